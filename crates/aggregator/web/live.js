// The live feed (`GET /api/v1/live`, docs/live-api.md) for the pages: one WebSocket that keeps
// the page's subscriptions, reconnects with capped, jittered backoff when it drops and then
// subscribes again (each subscription is answered with a snapshot, which replaces what the page
// held). Messages older than a topic's last snapshot are dropped here, so a page only ever
// applies a snapshot or a delta that follows it.

const VERSION = 1;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
/** A connection that stayed up this long resets the backoff. */
const STABLE_MS = 10000;
const BOARD_DEPTHS = [10, 20, 50, 100];

/**
 * A topic as the server echoes it back: leaderboards get their division (`running` by default)
 * and a depth rounded up to 10, 20, 50 or 100. Subscribing in this form lets the page match
 * every message to what it asked for.
 */
export function normalTopic(topic) {
  if (topic.kind !== 'leaderboard') return { ...topic };
  const out = { kind: 'leaderboard', race: topic.race };
  if (topic.gender) out.gender = topic.gender;
  if (topic.category) out.category = topic.category;
  out.division = (topic.division || 'running').toLowerCase();
  const top = Math.max(1, Number(topic.top) || 10);
  out.top = BOARD_DEPTHS.find((d) => d >= top) || BOARD_DEPTHS[BOARD_DEPTHS.length - 1];
  return out;
}

/** The key a topic is kept under (the same for what is sent and what comes back). */
export function topicKey(topic) {
  const t = normalTopic(topic || {});
  switch (t.kind) {
    case 'runner':
      return `runner:${t.bib}`;
    case 'arrivals':
      return `arrivals:${t.point}`;
    case 'leaderboard':
      return `leaderboard:${t.race}|${t.gender || ''}|${t.category || ''}|${t.division}|${t.top}`;
    default:
      return `unknown:${JSON.stringify(t)}`;
  }
}

/**
 * The live connection. `onMessage(message, key)` gets every message in order (key: its topic's
 * key, or null for `tick`); `onState({ state, retryInMs, attempts })` hears `connecting`, `open`
 * and `waiting` (to reconnect).
 */
export class LiveFeed {
  constructor({ onMessage, onState, url } = {}) {
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.url = url || `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/v1/live`;
    /** key → topic (normalised) */
    this.topics = new Map();
    /** key → version of the last snapshot applied */
    this.snapshotVersion = new Map();
    this.socket = null;
    this.attempts = 0;
    this.timer = null;
    this.openedAt = 0;
    this.nMessages = 0;
    /** Characters received (all JSON, so about the bytes), for diagnostics and the scale test. */
    this.nChars = 0;
    this.nConnects = 0;
  }

  start() {
    this.connect();
    // A phone that wakes up or comes back online reconnects at once rather than at the backoff.
    const now = () => {
      if (!this.socket && this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
        this.connect();
      }
    };
    window.addEventListener('online', now);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) now();
    });
  }

  subscribe(topic) {
    const t = normalTopic(topic);
    const key = topicKey(t);
    if (this.topics.has(key)) return key;
    this.topics.set(key, t);
    this.send({ op: 'subscribe', v: VERSION, topic: t });
    return key;
  }

  unsubscribe(topic) {
    const key = topicKey(topic);
    const t = this.topics.get(key);
    if (!t) return;
    this.topics.delete(key);
    this.snapshotVersion.delete(key);
    this.send({ op: 'unsubscribe', v: VERSION, topic: t });
  }

  /** Drops a topic the server refused, without telling it. */
  forget(topic) {
    const key = topicKey(topic);
    this.topics.delete(key);
    this.snapshotVersion.delete(key);
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (this.open) this.socket.send(JSON.stringify(message));
  }

  connect() {
    this.timer = null;
    this.onState({ state: 'connecting', attempts: this.attempts });
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (e) {
      console.error(e);
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.openedAt = performance.now();
      this.nConnects += 1;
      // Every subscription again: each is answered with a snapshot.
      this.snapshotVersion.clear();
      for (const t of this.topics.values()) socket.send(JSON.stringify({ op: 'subscribe', v: VERSION, topic: t }));
      this.onState({ state: 'open', attempts: this.attempts });
    });
    socket.addEventListener('message', (event) => this.receive(event.data));
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.openedAt && performance.now() - this.openedAt > STABLE_MS) this.attempts = 0;
      this.openedAt = 0;
      this.retry(event.code, event.reason);
    });
    // An error is followed by a close, which retries.
  }

  retry(code, reason) {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
    const retryInMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempts += 1;
    this.onState({ state: 'waiting', retryInMs, attempts: this.attempts, code, reason });
    this.timer = setTimeout(() => this.connect(), retryInMs);
  }

  receive(data) {
    if (typeof data === 'string') this.nChars += data.length;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      console.error('live feed: a message that is not JSON', data);
      return;
    }
    if (!m || typeof m !== 'object') return;
    this.nMessages += 1;
    if (m.type === 'tick') {
      this.onMessage(m, null);
      return;
    }
    const key = m.topic ? topicKey(m.topic) : null;
    if (m.type === 'error') {
      this.onMessage(m, key);
      return;
    }
    if (key === null || !this.topics.has(key)) return; // unsubscribed since
    if (m.snapshot === true) {
      this.snapshotVersion.set(key, m.version);
    } else {
      const since = this.snapshotVersion.get(key);
      // A delta before the first snapshot, or not newer than it, is already in that snapshot.
      if (since === undefined || !(m.version > since)) return;
    }
    this.onMessage(m, key);
  }
}
