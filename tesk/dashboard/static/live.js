import { API, credentials } from "./api.js";

// Keeps a view fresh: `follow(load, {onData, onError, events})` returning {refresh, stop}.
// With `events` (a path of TESK's event streams, e.g. "/events" or "/tasks/ID/events"), every
// event the server sends reloads the view at once and nothing is polled. Without an event stream
// (a server that has none, EventSource missing, or credentials, which EventSource cannot send),
// the view is polled every `intervalMs`. The stream opens after the first load that went through.
export function follow(load, { intervalMs = 4000, onData, onError = () => {}, events = null }) {
  let timer = null;
  let stopped = false;
  let inFlight = false;
  let again = false;
  let source = null;
  let listened = false;

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
        // Only once a load went through: without credentials a server that wants them answers
        // the stream with a 401 and a challenge, which the browser would take up itself.
        if (!stopped && !listened) listen();
      } catch (error) {
        if (!stopped) onError(error);
      } finally {
        inFlight = false;
      }
    }
    if (again) return tick();
    if (!stopped && !source) timer = setTimeout(tick, intervalMs);
  }

  // Events arrive in bursts (a task's history, several tasks at once): a load in flight takes
  // the later ones along with one more load, not one each.
  let hiddenChange = false;
  function changed() {
    if (document.hidden) {
      hiddenChange = true;
      return;
    }
    if (inFlight) again = true;
    else tick();
  }

  function listen() {
    listened = true;
    if (!events || typeof EventSource !== "function" || credentials()) return;
    source = new EventSource(API + events);
    source.addEventListener("state", changed);
    source.addEventListener("executor", changed);
    source.addEventListener("error", () => {
      // CONNECTING: the browser reconnects by itself (with Last-Event-ID). CLOSED: the server
      // has no stream here (404, not an event stream) or ended it (a task's final state).
      if (!source || source.readyState !== EventSource.CLOSED) return;
      source = null;
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  }

  const onVisible = () => {
    if (document.hidden) return;
    if (!source || hiddenChange) {
      hiddenChange = false;
      tick();
    }
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
      if (source) source.close();
      source = null;
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}
