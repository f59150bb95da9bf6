// Keeps a view fresh. Today by polling; an event stream can replace it behind the same shape
// (`follow(load, {onData, onError})` returning {refresh, stop}) without the views changing.
export function follow(load, { intervalMs = 4000, onData, onError = () => {} }) {
  let timer = null;
  let stopped = false;
  let inFlight = false;
  let again = false;

  async function tick() {
    clearTimeout(timer);
    if (stopped) return;
    if (inFlight) {
      again = true;
      return;
    }
    // A hidden tab asks nothing: the next tick after it is shown again catches up.
    if (!document.hidden || again) {
      inFlight = true;
      again = false;
      try {
        const data = await load();
        if (!stopped) onData(data);
      } catch (error) {
        if (!stopped) onError(error);
      } finally {
        inFlight = false;
      }
    }
    if (again) return tick();
    if (!stopped) timer = setTimeout(tick, intervalMs);
  }

  const onVisible = () => {
    if (!document.hidden) tick();
  };
  document.addEventListener("visibilitychange", onVisible);
  tick();
  return {
    refresh: () => {
      again = true;
      return tick();
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}
