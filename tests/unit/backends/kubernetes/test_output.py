"""The pod-log follower: stdout up to the marker, held back where the marker may begin."""

from __future__ import annotations

import time

from tesk.backends.kubernetes.output import _Follower, _split

SEPARATOR = b"\n--tesk-stderr-abc--\n"


class FakeLog:
    """A follow=true log response that yields the given chunks."""

    status = 200

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.closed = False

    def read1(self, amount: int, decode_content: bool = False) -> bytes:
        """The next chunk as it "arrived" (b"": the log ended), never more than `amount`."""
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        assert len(chunk) <= amount
        return chunk

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


def follow(chunks: list[bytes], skip: int = 0) -> bytes:
    follower = _Follower(lambda: FakeLog(chunks), SEPARATOR, skip=skip)
    follower.start()
    deadline = time.monotonic() + 10
    while not follower.done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert follower.done
    return follower.take(skip, 1 << 20)


def test_the_marker_ends_stdout_even_split_across_chunks() -> None:
    chunks = [b"line 1\nline 2\n", b"\n--tesk-", b"stderr-abc--\nthe stderr tail\n"]
    assert follow(chunks) == b"line 1\nline 2\n"


def test_a_log_without_the_marker_is_all_stdout() -> None:
    assert follow([b"killed before the end\n", b"\n--tesk"]) == b"killed before the end\n\n--tesk"


def test_a_new_follower_skips_what_an_earlier_one_gave() -> None:
    assert follow([b"0123", b"456789", SEPARATOR, b"err"], skip=6) == b"6789"


def test_only_a_possible_start_of_the_marker_is_held_back() -> None:
    assert _split(bytearray(b"abc\n--tes"), SEPARATOR) == (3, False)
    assert _split(bytearray(b"abc\nx"), SEPARATOR) == (5, False)
    assert _split(bytearray(b"abc" + SEPARATOR + b"tail"), SEPARATOR) == (3, True)
    assert _split(bytearray(b"abc"), None) == (3, False)


def test_a_pod_not_on_a_node_yet_is_asked_again_not_taken_for_an_empty_log() -> None:
    # pods/log answers 204 (and no body) while no node runs the pod.
    unscheduled = FakeLog([])
    unscheduled.status = 204
    follower = _Follower(lambda: unscheduled, SEPARATOR, skip=0)
    follower.start()
    deadline = time.monotonic() + 10
    while not (follower.failed or follower.done) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert follower.failed
    assert not follower.done
