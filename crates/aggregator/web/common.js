// Shared by the racetime pages: fetching JSON, building DOM without innerHTML, polling, and
// formatting numbers, durations, instants and ages. No dependencies, no build step.

const LANG = document.documentElement.lang || 'en';

/** An error from the API, with the HTTP status (0 when the network failed). */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * Fetches `url` and returns the Response once its status is 2xx. Otherwise throws an ApiError
 * whose message says what went wrong in words a crew can act on: the aggregator's own error body
 * (`{"error": ...}`) when there is one. `token` adds `Authorization: Bearer <token>`; `body`
 * (any JSON value) is sent as JSON.
 */
export async function request(url, { method = 'GET', body, token, accept = 'application/json', timeoutMs = 8000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const headers = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal: controller.signal,
    });
  } catch (e) {
    clearTimeout(timer);
    const why = e.name === 'AbortError' ? `no answer within ${timeoutMs / 1000} s` : 'the aggregator cannot be reached';
    throw new ApiError(`${url}: ${why}`, 0);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const error = await response.json();
      if (error && typeof error.error === 'string') detail = error.error;
    } catch {
      // Not JSON: the status text says it.
    } finally {
      clearTimeout(timer);
    }
    throw new ApiError(`${url}: ${response.status} ${detail}`, response.status);
  }
  // The body may still be arriving: the timer keeps running until the caller has read it.
  response.done = () => clearTimeout(timer);
  return response;
}

/** GET (or `method`) `url` as JSON; errors as in `request`. */
export async function getJSON(url, options = {}) {
  const response = await request(url, options);
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: reported below as malformed.
  } finally {
    response.done();
  }
  if (body === null) {
    throw new ApiError(`${url}: the answer is not JSON`, response.status);
  }
  return body;
}

/** Shows `error` (or hides the banner when `error` is null) in a `role="alert"` element. */
export function showError(element, error) {
  if (!element) return;
  if (error) {
    element.textContent = error.message || String(error);
    element.hidden = false;
  } else {
    element.hidden = true;
    element.textContent = '';
  }
}

/**
 * Builds an element: `h('td', { class: 'num', dataset: { label: 'Reads/s' } }, 'text', child)`.
 * Text always goes in as text, never as markup.
 */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (key === 'class') {
      element.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/**
 * Calls `tick` now and then every `intervalMs` after each call finishes (never two at once).
 * While the page is hidden it waits; it runs at once when the page shows again.
 */
export function poll(tick, intervalMs) {
  let timer = null;
  let running = false;
  const run = async () => {
    clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      await tick();
    } catch (e) {
      console.error(e);
    } finally {
      running = false;
      if (!document.hidden) timer = setTimeout(run, intervalMs);
    }
  };
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) run();
  });
  run();
}

/** A finite number, or null (telemetry fields may be missing or of another type). */
export function num(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

const numberFormats = new Map();

/** `n` with `digits` decimals (grouped thousands), or `—`. */
export function formatNumber(n, digits = 0) {
  if (num(n) === null) return '—';
  let f = numberFormats.get(digits);
  if (!f) {
    f = new Intl.NumberFormat(LANG, { minimumFractionDigits: digits, maximumFractionDigits: digits });
    numberFormats.set(digits, f);
  }
  return f.format(n);
}

/** A signed number: `+3.200`, `−0.5` (a true minus sign), `0.0`. */
export function formatSigned(n, digits) {
  if (num(n) === null) return '—';
  const text = formatNumber(Math.abs(n), digits);
  if (Number(Math.abs(n).toFixed(digits)) === 0) return text;
  return (n < 0 ? '−' : '+') + text;
}

/** A duration in milliseconds as H:MM:SS (whole seconds, rounded down), or `—`. */
export function formatDuration(ms) {
  if (num(ms) === null) return '—';
  const sign = ms < 0 ? '−' : '';
  const total = Math.floor(Math.abs(ms) / 1000);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return `${sign}${hours}:${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

/** How long ago, from an age in milliseconds: `just now`, `12 s ago`, `4 min ago`, `2 h 5 min ago`. */
export function formatAge(ms) {
  return ageWords(ms, 'ago');
}

/** The same words for any span: `12 s`, `4 min`, `2 h 5 min` (`suffix` appended when given). */
export function ageWords(ms, suffix = '') {
  if (num(ms) === null) return '—';
  const tail = suffix ? ` ${suffix}` : '';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 1 && suffix === 'ago') return 'just now';
  if (s < 60) return `${s} s${tail}`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min${tail}`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min${tail}`;
  return `${Math.floor(hours / 24)} d${tail}`;
}

/** Bytes in binary units: `512 B`, `3.4 MiB`, `12.3 GiB`. */
export function formatBytes(n) {
  if (num(n) === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${formatNumber(value, unit === 0 ? 0 : 1)} ${units[unit]}`;
}

const instantFormats = new Map();

/**
 * A UTC instant in microseconds as a wall-clock time in `zone` (an IANA name such as
 * `Europe/Paris`): `21:35:12`, or with the date when `withDate`. An unknown zone falls back to
 * this device's zone rather than failing.
 */
export function formatInstant(us, zone, { withDate = false } = {}) {
  if (num(us) === null) return '—';
  const key = `${zone}|${withDate}`;
  let f = instantFormats.get(key);
  if (!f) {
    const options = { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
    if (withDate) Object.assign(options, { year: 'numeric', month: '2-digit', day: '2-digit' });
    try {
      f = new Intl.DateTimeFormat(LANG, { ...options, timeZone: zone || undefined });
    } catch {
      f = new Intl.DateTimeFormat(LANG, options);
    }
    instantFormats.set(key, f);
  }
  return f.format(new Date(Math.floor(us / 1000)));
}

/**
 * The zone the event's instants are shown in: `{ zone, fromEvent }`. Asks `GET /api/v1/event`
 * for its `time_zone`; until the aggregator publishes it (or if the answer has none), this
 * device's own zone, with `fromEvent: false` so the page can say so.
 */
export async function loadEventZone() {
  const own = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  try {
    const event = await getJSON('/api/v1/event', { timeoutMs: 4000 });
    const zone = event && typeof event.time_zone === 'string' ? event.time_zone : null;
    if (zone) {
      new Intl.DateTimeFormat(LANG, { timeZone: zone }); // throws on a zone this browser lacks
      return { zone, fromEvent: true };
    }
  } catch {
    // No such route (yet), or a zone this browser does not know: this device's zone.
  }
  return { zone: own, fromEvent: false };
}

const partsFormats = new Map();

/**
 * A UTC instant in microseconds as a local date-time in `zone`, the way the aggregator reads a
 * desk's time without an offset: `2024-08-10 21:00:03.25` (the fraction only when there is one,
 * to the hundredth). An unknown zone falls back to this device's zone.
 */
export function formatLocalDateTime(us, zone) {
  if (num(us) === null) return '';
  let f = partsFormats.get(zone);
  if (!f) {
    const options = {
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    };
    try {
      f = new Intl.DateTimeFormat('en-CA', { ...options, timeZone: zone || undefined });
    } catch {
      f = new Intl.DateTimeFormat('en-CA', options);
    }
    partsFormats.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(Math.floor(us / 1000))).map((x) => [x.type, x.value]));
  const hundredths = Math.floor((((us % 1e6) + 1e6) % 1e6) / 1e4);
  const fraction = hundredths ? `.${String(hundredths).padStart(2, '0')}` : '';
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}${fraction}`;
}

/** A UTC instant in microseconds as RFC 3339 in UTC, to the microsecond: `2024-08-10T19:00:03.250000Z`. */
export function formatRfc3339(us) {
  const seconds = Math.floor(us / 1e6);
  const micros = us - seconds * 1e6;
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  return `${base}.${String(micros).padStart(6, '0')}Z`;
}

/** A distance in metres as kilometres: `0 km`, `7 km`, `21.1 km`, `42.195 km` for the marathon's finish. */
export function formatKm(m) {
  if (num(m) === null) return '—';
  const km = m / 1000;
  const digits = Number.isInteger(km) ? 0 : Number.isInteger(km * 10) ? 1 : m === 42195 ? 3 : 1;
  return `${formatNumber(km, digits)} km`;
}

/** `fn` called `waitMs` after the last of a burst of calls, with that call's arguments. */
export function debounce(fn, waitMs) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), waitMs);
  };
}

/**
 * A JSON value kept in `localStorage` or `sessionStorage` under `key`. Storage can be missing
 * or full (private browsing): reads then give `fallback` and writes are dropped, never thrown.
 */
export function stored(storage, key, fallback) {
  return {
    get() {
      try {
        const text = storage.getItem(key);
        return text === null ? fallback : JSON.parse(text);
      } catch {
        return fallback;
      }
    },
    set(value) {
      try {
        if (value === null || value === undefined) storage.removeItem(key);
        else storage.setItem(key, JSON.stringify(value));
      } catch {
        // Not kept: it lasts as long as the page.
      }
    },
  };
}
