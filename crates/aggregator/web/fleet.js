// The fleet page: every edge box and each of its readers, for the crews who set them up at the
// mats. Asks `GET /api/v1/fleet` every 2 s; an edge's telemetry is its own status document
// (edge-daemon's EdgeStatus) passed through as JSON, so every field is read defensively: a
// missing or mistyped field shows as `—`, never as a broken page.
//
// Ages: `telemetry_age_ms` is measured by the aggregator's clock. Durations inside a report
// (last read, last sync, oldest unsynced read) are differences on the edge's own clock, added to
// that age; instants from two different clocks are never subtracted.

import {
  ageWords,
  formatAge,
  formatBytes,
  formatDuration,
  formatInstant,
  formatNumber,
  formatSigned,
  getJSON,
  h,
  loadEventZone,
  num,
  poll,
  showError,
  svg,
} from './common.js';

const POLL_MS = 2000;
/** An edge not heard from for longer than this is silent (it reports every 3 s). */
const SILENT_MS = 10000;
/** How much reads/s history the sparklines show. */
const HISTORY_MS = 120000;
/** Below this the edge itself raises a disk alarm; the page marks it too. */
const DISK_LOW_BYTES = 200 * 1024 * 1024;
const BATTERY_LOW_SOC = 20;

const $ = (id) => document.getElementById(id);
const els = {
  updated: $('updated'),
  error: $('error'),
  alarmList: $('alarm-list'),
  alarmCount: $('alarm-count'),
  edges: $('edges'),
  edgeCount: $('edge-count'),
  zoneNote: $('zone-note'),
};

const page = {
  zone: undefined,
  /** performance.now() of the last answer from the aggregator. */
  lastOkAt: null,
  /** Per edge: what earlier reports said (for rates and upload movement). */
  memo: new Map(),
  /** Per `edge/reader`: [{ t, v }] reads/s samples, t = performance.now(). */
  history: new Map(),
  cards: new Map(),
  alarmsKey: null,
};

const obj = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {});
const arr = (v) => (Array.isArray(v) ? v : []);
/** A count: a finite number that is not negative, or null. */
const count = (v) => (num(v) !== null && v >= 0 ? v : null);
const str = (v) => (typeof v === 'string' && v !== '' ? v : null);
/** `ChargeController` or `charge_controller` → `charge controller`. */
const words = (s) => s.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replaceAll('_', ' ').toLowerCase();
const plural = (n, one, many) => `${formatNumber(n)} ${n === 1 ? one : many}`;

function memoFor(edge) {
  let m = page.memo.get(edge);
  if (!m) {
    m = { atUs: null, nReads: new Map(), rates: new Map(), ackSeq: null, ackMovedAt: null };
    page.memo.set(edge, m);
  }
  return m;
}

/** Everything one card and the alarm list need about one edge. */
function view(e, now) {
  const hasTelemetry = e.telemetry !== null && typeof e.telemetry === 'object';
  const tele = obj(e.telemetry);
  const status = obj(tele.status);
  const ageMs = num(e.telemetry_age_ms);
  const silent = !hasTelemetry || (ageMs !== null && ageMs > SILENT_MS);
  const atUs = num(tele.at_us);
  const readers = arr(status.readers).filter((r) => r && typeof r.id === 'string');
  const memo = memoFor(e.edge);

  // Reads/s from the read counts of two reports (a reader that stopped reading drops to 0);
  // the edge's own smoothed figure when there is only one report, or the counts went back.
  if (hasTelemetry && atUs !== null && atUs !== memo.atUs) {
    for (const r of readers) {
      const n = num(r.n_reads);
      const before = memo.nReads.get(r.id);
      let rate = num(r.reads_per_s);
      if (memo.atUs !== null && atUs > memo.atUs && n !== null && before !== undefined && n >= before) {
        rate = (n - before) / ((atUs - memo.atUs) / 1e6);
      }
      memo.rates.set(r.id, rate);
      if (n !== null) memo.nReads.set(r.id, n);
    }
    memo.atUs = atUs;
  }
  for (const r of readers) {
    const key = `${e.edge}/${r.id}`;
    const samples = page.history.get(key) || [];
    const rate = memo.rates.get(r.id);
    if (!silent && rate !== null && rate !== undefined) samples.push({ t: now, v: rate });
    while (samples.length && samples[0].t < now - HISTORY_MS) samples.shift();
    page.history.set(key, samples);
  }

  const seq = num(e.acked_seq);
  if (seq !== null && seq !== memo.ackSeq) {
    if (memo.ackSeq !== null) memo.ackMovedAt = now;
    memo.ackSeq = seq;
  }

  const alarms = [];
  if (!hasTelemetry) {
    alarms.push('edge silent: it has never reported');
  } else if (silent) {
    alarms.push(`edge silent: no report for over ${SILENT_MS / 1000} s`);
  }
  const reported = Array.isArray(status.alarms)
    ? status.alarms.filter((a) => typeof a === 'string')
    : derivedAlarms(status, readers);
  for (const a of reported) alarms.push(silent ? `${a} (last known)` : a);

  return { id: e.edge, e, hasTelemetry, status, ageMs, silent, atUs, readers, memo, alarms };
}

/** The alarms of a status document without an `alarms` list (an older edge). */
function derivedAlarms(status, readers) {
  const out = [];
  for (const r of readers) {
    if (r.connected === false) out.push(`reader ${r.id} not connected${str(r.last_error) ? `: ${r.last_error}` : ''}`);
    if (str(r.line_health)) out.push(`reader ${r.id}: ${r.line_health}`);
    for (const a of arr(r.alarms)) if (typeof a === 'string') out.push(`reader ${r.id}: ${a}`);
  }
  if (status.store_failing === true) out.push('cannot write the outbox');
  return out;
}

function readerHasAlarm(r) {
  return r.connected === false || str(r.line_health) !== null || arr(r.alarms).length > 0;
}

/** The age, now, of an instant a report carried (both on the edge's clock). */
function ageNowMs(v, us) {
  if (v.ageMs === null || v.atUs === null || num(us) === null) return null;
  return v.ageMs + (v.atUs - us) / 1000;
}

function badge(kind, icon, text) {
  return h('span', { class: ['badge', kind] }, h('span', { 'aria-hidden': 'true' }, `${icon} `), text);
}

function fact(label, value, kind) {
  return h('div', {}, h('dt', {}, label), h('dd', { class: kind || null }, value));
}

function renderAlarms(views) {
  const items = [];
  for (const v of views) for (const text of v.alarms) items.push({ edge: v.id, text, silent: v.silent });
  items.sort((a, b) => Number(b.silent) - Number(a.silent) || a.edge.localeCompare(b.edge));
  const key = items.map((i) => `${i.edge}\u0000${i.text}`).join('\u0001');
  els.alarmCount.textContent = items.length ? `(${items.length})` : '';
  if (key === page.alarmsKey) return; // unchanged: nothing new for screen readers to announce
  page.alarmsKey = key;
  if (!items.length) {
    els.alarmList.replaceChildren(
      h('li', { class: 'none' }, h('span', { class: 'icon', 'aria-hidden': 'true' }, '✔ '), 'No alarms.'),
    );
    return;
  }
  els.alarmList.replaceChildren(
    ...items.map((i) =>
      h(
        'li',
        { class: 'alarm', dataset: { edge: i.edge } },
        h('span', { class: 'icon', 'aria-hidden': 'true' }, '⚠ '),
        h('span', { class: 'sr-only' }, 'Alarm: '),
        h('strong', {}, i.edge),
        ' — ',
        i.text,
      ),
    ),
  );
}

function sparkline(samples, now) {
  const width = 120;
  const height = 24;
  const latest = samples.length ? samples[samples.length - 1].v : null;
  const peak = samples.reduce((m, s) => Math.max(m, s.v), 0);
  const label = samples.length
    ? `Reads per second over the last ${HISTORY_MS / 60000} minutes: now ${formatNumber(latest, 1)}, peak ${formatNumber(peak, 1)}`
    : 'Reads per second: no samples yet';
  const top = Math.max(1, peak);
  const points = samples.map((s) => [
    ((s.t - (now - HISTORY_MS)) / HISTORY_MS) * width,
    height - 2 - (s.v / top) * (height - 4),
  ]);
  const d = points.length >= 2 ? points.map((p, i) => `${i ? 'L' : 'M'}${p[0].toFixed(1)} ${p[1].toFixed(1)}`).join(' ') : null;
  return svg(
    'svg',
    {
      class: 'spark',
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: 'none',
      role: 'img',
      'aria-label': label,
      dataset: { samples: String(samples.length) },
    },
    svg('title', {}, label),
    svg('line', { class: 'base', x1: 0, y1: height - 2, x2: width, y2: height - 2 }),
    d && svg('path', { class: 'line', d }),
  );
}

function formatOffset(ms) {
  if (num(ms) === null) return '—';
  return Math.abs(ms) >= 1000 ? `${formatSigned(ms / 1000, 3)} s` : `${formatSigned(ms, 1)} ms`;
}

function readerRow(v, r, now) {
  const kind = (x) => (x ? 'has-alarm' : null);
  const connected =
    r.connected === true
      ? badge('ok', '✔', 'Connected')
      : r.connected === false
        ? badge('bad', '✖', 'Disconnected')
        : badge('none', '?', 'Unknown');
  const state = h(
    'td',
    { dataset: { label: 'State' }, class: 'state' },
    h(
      'div',
      {},
      connected,
      v.silent && v.hasTelemetry ? h('small', { class: 'stale-note' }, ' last known') : null,
      r.connected === false && str(r.last_error) ? h('div', {}, h('small', {}, r.last_error)) : null,
      str(r.line_health) ? h('div', {}, badge('bad', '⚠', r.line_health)) : null,
    ),
  );
  const samples = page.history.get(`${v.id}/${r.id}`) || [];
  const rate = v.memo.rates.get(r.id);
  const rateCell = h(
    'td',
    { dataset: { label: 'Reads/s' }, class: 'rate' },
    h('div', {}, h('span', { class: 'num rate-value' }, formatNumber(rate, 1)), ' ', sparkline(samples, now)),
  );
  const clockAlarm = arr(r.alarms).length > 0;
  const clock = h(
    'td',
    { dataset: { label: 'Clock offset' }, class: 'clock' },
    h(
      'div',
      {},
      h('span', { class: ['num', 'offset', clockAlarm ? 'bad' : null] }, formatOffset(r.clock_offset_ms)),
      clockAlarm ? h('span', { class: 'sr-only' }, ' (alarm)') : null,
      num(r.clock_drift_ppm) !== null ? h('small', { class: 'drift' }, ` drift ${formatSigned(r.clock_drift_ppm, 1)} ppm`) : null,
    ),
  );
  const lastReadAge = ageNowMs(v, r.last_read_us);
  const lastRead = h(
    'td',
    { dataset: { label: 'Last read' } },
    h(
      'div',
      {},
      num(r.last_read_us) === null
        ? h('span', { class: 'muted' }, 'none yet')
        : [h('span', { class: 'num' }, formatInstant(r.last_read_us, page.zone)), ' ', h('small', {}, formatAge(lastReadAge))],
    ),
  );
  const antennas = Object.entries(obj(r.per_antenna))
    .filter(([, n]) => count(n) !== null)
    .map(([a, n]) => `${a}: ${formatNumber(n)}`)
    .join(' · ');
  const malformed = count(r.n_malformed);
  const counts = h(
    'td',
    { dataset: { label: 'Reads' } },
    h(
      'div',
      {},
      h('span', { class: 'num' }, formatNumber(count(r.n_reads))),
      antennas ? h('small', {}, ` (antennas ${antennas})`) : null,
      malformed ? h('div', {}, h('small', {}, `${formatNumber(malformed)} malformed`)) : null,
    ),
  );
  const detail = [str(r.line), str(r.protocol)].filter(Boolean).join(' · ');
  return h(
    'tr',
    { dataset: { reader: r.id }, class: kind(readerHasAlarm(r)) },
    h('th', { scope: 'row' }, r.id, detail ? h('div', {}, h('small', {}, detail)) : null),
    state,
    rateCell,
    clock,
    lastRead,
    counts,
  );
}

/** `12.8 V · 84 %`, either part alone, or null. */
function batteryText(d) {
  const parts = [];
  if (count(d.battery_mv) !== null) parts.push(`${formatNumber(d.battery_mv / 1000, 1)} V`);
  if (count(d.battery_soc) !== null) parts.push(`${formatNumber(d.battery_soc)} %`);
  return parts.length ? parts.join(' · ') : null;
}

function devicesList(v) {
  const devices = arr(v.status.devices).filter((d) => d && typeof d.id === 'string');
  if (!devices.length) return null;
  return h(
    'ul',
    { class: 'devices', 'aria-label': `Devices of ${v.id}` },
    devices.map((d) => {
      const reading = [batteryText(d)].filter(Boolean);
      if (num(d.clock_shows_s) !== null) reading.push(`shows ${formatDuration(d.clock_shows_s * 1000)}`);
      if (count(d.n_guns)) reading.push(plural(d.n_guns, 'gun', 'guns'));
      return h(
        'li',
        { dataset: { device: d.id }, class: d.connected === false ? 'has-alarm' : null },
        h('strong', {}, d.id),
        str(d.kind) ? h('small', {}, ` ${words(d.kind)}`) : null,
        ' ',
        d.connected === true
          ? badge('ok', '✔', 'Connected')
          : d.connected === false
            ? badge('bad', '✖', 'Disconnected')
            : badge('none', '?', 'Unknown'),
        reading.length ? h('span', { class: 'num' }, ` ${reading.join(' · ')}`) : null,
      );
    }),
  );
}

function cardContent(v, now) {
  const s = v.status;
  const headingId = `edge-${v.id}-heading`;
  const nAlarms = v.alarms.length;
  const stateBadge = !v.hasTelemetry
    ? badge('bad', '✖', 'Silent: never reported')
    : v.silent
      ? badge('bad', '✖', `Silent for ${ageWords(v.ageMs)}`)
      : nAlarms
        ? badge('bad', '⚠', nAlarms === 1 ? '1 alarm' : `${nAlarms} alarms`)
        : badge('ok', '✔', 'OK');

  const facts = [];
  facts.push(
    fact(
      'Last report',
      !v.hasTelemetry ? 'never' : v.ageMs === null ? 'age unknown' : formatAge(v.ageMs),
      v.silent ? 'bad' : null,
    ),
  );
  const lastSync = ageNowMs(v, s.last_sync_us);
  const moved = v.memo.ackMovedAt;
  facts.push(
    fact(
      'Last sync',
      [
        lastSync === null ? '—' : formatAge(lastSync),
        h('div', {}, h('small', {}, `acked #${formatNumber(num(v.e.acked_seq))}${moved === null ? '' : `, moved ${formatAge(now - moved)}`}`)),
        str(s.uplink_error) ? h('div', {}, h('small', { class: 'bad' }, s.uplink_error)) : null,
      ],
      str(s.uplink_error) ? 'warn' : null,
    ),
  );
  const backlog = count(s.backlog);
  const oldestAge = ageNowMs(v, s.oldest_unsynced_us);
  facts.push(
    fact(
      'Backlog',
      backlog === null
        ? '—'
        : [plural(backlog, 'read', 'reads'), backlog > 0 && oldestAge !== null ? h('div', {}, h('small', {}, `oldest ${formatDuration(oldestAge)}`)) : null],
      backlog > 0 && oldestAge !== null && oldestAge > 60000 ? 'warn' : null,
    ),
  );
  const batteries = arr(s.devices).filter((d) => d && batteryText(d) !== null);
  facts.push(
    fact(
      'Battery',
      batteries.length
        ? batteries.map((d) =>
            h(
              'div',
              {},
              batteryText(d),
              batteries.length > 1 ? h('small', {}, ` ${d.id}`) : null,
            ),
          )
        : h('span', { class: 'muted' }, 'no monitor'),
      batteries.some((d) => num(d.battery_soc) !== null && d.battery_soc < BATTERY_LOW_SOC) ? 'bad' : null,
    ),
  );
  const disk = count(s.disk_free_bytes);
  facts.push(fact('Disk free', formatBytes(disk), disk !== null && disk < DISK_LOW_BYTES ? 'bad' : null));
  const counts = obj(v.e.counts);
  facts.push(
    fact('Upstream', [
      plural(count(counts.n_reads) ?? 0, 'read', 'reads'),
      num(counts.n_refusals) ? h('div', {}, h('small', { class: 'bad' }, plural(counts.n_refusals, 'refusal', 'refusals'))) : null,
    ]),
  );

  const readers = v.readers.length
    ? h(
        'table',
        { class: 'grid readers' },
        h('caption', { class: 'sr-only' }, `Readers of ${v.id}`),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Reader', 'State', 'Reads/s', 'Clock offset', 'Last read', 'Reads'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h('tbody', {}, v.readers.map((r) => readerRow(v, r, now))),
      )
    : h('p', { class: 'muted' }, v.hasTelemetry ? 'No readers reported.' : 'No report yet: readers unknown.');

  return [
    h(
      'header',
      {},
      h('h3', { id: headingId }, v.id),
      str(s.point) && s.point !== v.id ? h('span', { class: 'point' }, `at ${s.point}`) : null,
      stateBadge,
    ),
    v.silent && v.hasTelemetry ? h('p', { class: 'stale-note' }, 'Showing the last report: this edge is silent.') : null,
    h('dl', { class: 'facts' }, facts),
    readers,
    devicesList(v),
  ];
}

function renderEdges(views, now) {
  const seen = new Set();
  for (const v of views) {
    seen.add(v.id);
    let card = page.cards.get(v.id);
    if (!card) {
      card = h('article', { class: 'card edge', dataset: { edge: v.id }, 'aria-labelledby': `edge-${v.id}-heading` });
      page.cards.set(v.id, card);
    }
    card.className = ['card', 'edge', v.silent ? 'silent' : null, v.alarms.length ? 'has-alarm' : null].filter(Boolean).join(' ');
    card.dataset.state = v.silent ? 'silent' : v.alarms.length ? 'alarm' : 'ok';
    card.replaceChildren(...cardContent(v, now).filter(Boolean));
    els.edges.append(card); // (re)appending keeps the aggregator's order
  }
  for (const [id, card] of page.cards) {
    if (!seen.has(id)) {
      card.remove();
      page.cards.delete(id);
    }
  }
  const nSilent = views.filter((v) => v.silent).length;
  els.edgeCount.textContent = `(${views.length}${nSilent ? `, ${nSilent} silent` : ''})`;
}

function renderUpdated() {
  if (page.lastOkAt === null) {
    els.updated.textContent = 'No answer from the aggregator yet';
    return;
  }
  els.updated.textContent = `Updated ${formatAge(performance.now() - page.lastOkAt)}`;
}

async function tick() {
  let fleet;
  try {
    fleet = await getJSON('/api/v1/fleet');
    if (!Array.isArray(fleet)) throw new Error('/api/v1/fleet: the answer is not a list of edges');
  } catch (e) {
    showError(els.error, new Error(`Cannot update: ${e.message}. Figures below are from the last answer.`));
    renderUpdated();
    return;
  }
  showError(els.error, null);
  const now = performance.now();
  page.lastOkAt = now;
  const views = fleet.filter((e) => e && typeof e.edge === 'string').map((e) => view(e, now));
  renderAlarms(views);
  renderEdges(views, now);
  renderUpdated();
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
}

async function main() {
  const { zone, fromEvent } = await loadEventZone();
  page.zone = zone;
  els.zoneNote.textContent = `Times are in ${zone} (${fromEvent ? "the event's zone" : "this device's zone"}).`;
  setInterval(renderUpdated, 1000);
  poll(tick, POLL_MS);
}

main();
