// The spectator page: follow runners (found by name or bib on the server, remembered on this
// device), their splits, places, predicted times and place on the course; a leaderboard; the
// latest finishers; a race's finish times and finishers per minute as pictures.
//
// Everything live comes over one WebSocket (live.js): a snapshot per topic, then deltas. The
// page never asks for a whole list: search is the server's, leaderboards are a head of at most
// 100, the finish feed keeps 50, the pictures are the server's counts. So it stays as light with
// 40,000 runners in the event as with 40. Renders are batched (at most one per section every
// RENDER_MS), so a burst of messages at the finish costs one redraw.
//
// "Now" is the server's clock (the `tick` message, every 5 s): in a simulation it is the race
// clock, so "overdue" and the estimated place on the course agree with the race, not the phone.

import {
  debounce,
  formatInstant,
  formatKm,
  formatNumber,
  getJSON,
  h,
  loadEventZone,
  num,
  poll,
  showError,
  stored,
} from './common.js';
import { courseProfile, histogram, paceBars, perMinute } from './charts.js';
import { LiveFeed, topicKey } from './live.js';

const SEARCH_DEBOUNCE_MS = 250;
const RENDER_MS = 50;
const CHARTS_MS = 30000;
/** A subscription each, and the server allows 64 per connection. */
const MAX_FOLLOWED = 20;
const ARRIVALS_KEPT = 50;
/** Finishers listed until "Show all" is pressed (a phone scrolls past them to the pictures). */
const ARRIVALS_SHOWN = 10;
/** How long a leaderboard row stays highlighted after it changed, and keeps its ▲/▼. */
const FLASH_MS = 4000;
const MOVE_SHOWN_MS = 60000;

const $ = (id) => document.getElementById(id);
const els = {
  eventName: $('event-name'),
  liveState: $('live-state'),
  error: $('error'),
  searchForm: $('search-form'),
  search: $('search'),
  searchNote: $('search-note'),
  searchResults: $('search-results'),
  followedCount: $('followed-count'),
  followedEmpty: $('followed-empty'),
  runners: $('runners'),
  announce: $('announce'),
  boardRace: $('board-race'),
  boardList: $('board-list'),
  boardDivisionLabel: $('board-division-label'),
  boardDivision: $('board-division'),
  boardTop: $('board-top'),
  boardNote: $('board-note'),
  boardCaption: $('board-caption'),
  boardRows: $('board-rows'),
  arrivalsPointLabel: $('arrivals-point-label'),
  arrivalsPoint: $('arrivals-point'),
  arrivalsNote: $('arrivals-note'),
  arrivals: $('arrivals'),
  arrivalsMore: $('arrivals-more'),
  charts: $('charts'),
  chartsUpdated: $('charts-updated'),
  zoneNote: $('zone-note'),
};

const followedStore = stored(window.localStorage, 'racetime.followed', []);
const boardStore = stored(window.localStorage, 'racetime.board', null);

const page = {
  event: null,
  zone: undefined,
  races: new Map(),
  /** The server's clock (µs) at the last tick, and when that came (performance.now()). */
  tickUs: null,
  tickAt: 0,
  /** The latest passing this page has seen (µs): the server's clock is at least that. */
  seenUs: null,
  /** Bibs, in the order they were followed (newest first). */
  followed: [],
  /** bib → { view, error, cardEl, nPassed } */
  runners: new Map(),
  board: { topic: null, key: null, rows: [], marks: new Map(), snapshotAt: null },
  arrivals: { topic: null, key: null, items: [], received: false },
  arrivalsAll: false,
  feed: null,
  live: { state: 'connecting' },
  dirty: new Set(),
  renderTimer: null,
};

// ---------------------------------------------------------------------------------------------
// Rendering, batched.

function schedule(...sections) {
  for (const s of sections) page.dirty.add(s);
  if (page.renderTimer === null) page.renderTimer = setTimeout(render, RENDER_MS);
}

function render() {
  page.renderTimer = null;
  const dirty = new Set(page.dirty);
  page.dirty.clear();
  if (dirty.has('runners')) renderRunners();
  if (dirty.has('board')) renderBoard();
  if (dirty.has('arrivals')) renderArrivals();
  if (dirty.has('live')) renderLive();
}

function badge(kind, icon, text) {
  return h('span', { class: ['badge', kind] }, h('span', { 'aria-hidden': 'true' }, `${icon} `), text);
}

const STATUS = {
  not_started: ['none', '○', 'Not started'],
  running: ['run', '▶', 'Running'],
  finished: ['ok', '✔', 'Finished'],
  review: ['warn', '⚠', 'Result being checked'],
  dns: ['none', '–', 'Did not start'],
  dnf: ['bad', '✖', 'Did not finish'],
  dsq: ['bad', '✖', 'Disqualified'],
};

function statusBadge(status) {
  const [kind, icon, text] = STATUS[status] || ['none', '?', String(status)];
  return badge(kind, icon, text);
}

const GENDER_WORDS = { F: 'Women', M: 'Men', X: 'Non-binary' };

/** How far the page runs the server's clock on by itself after a tick (ticks come every 5 s). */
const TICK_RUN_ON_MS = 10000;

/**
 * The server's clock now, or null before the first answer: the last tick plus the time since
 * (a few seconds at most, so a simulated clock that stands still is not run on far), and never
 * before a passing the page has seen (a simulated clock can jump between ticks).
 */
function serverNow() {
  if (page.tickUs === null) return page.seenUs;
  const runOn = Math.min(Math.max(performance.now() - page.tickAt, 0), TICK_RUN_ON_MS) * 1000;
  const now = page.tickUs + runOn;
  return page.seenUs !== null && page.seenUs > now ? page.seenUs : now;
}

function seen(us) {
  if (num(us) !== null && (page.seenUs === null || us > page.seenUs)) page.seenUs = us;
}

// ---------------------------------------------------------------------------------------------
// Search.

let searchSeq = 0;

async function search(q) {
  const query = q.trim();
  const seq = ++searchSeq;
  if (!query) {
    els.searchResults.replaceChildren();
    els.searchNote.textContent = '';
    return;
  }
  els.searchNote.textContent = 'Searching…';
  let hits;
  try {
    hits = await getJSON(`/api/v1/participants?q=${encodeURIComponent(query)}&limit=20`);
    if (!Array.isArray(hits)) throw new Error('the answer is not a list');
  } catch (e) {
    if (seq !== searchSeq) return;
    els.searchNote.textContent = `Search failed: ${e.message}`;
    return;
  }
  if (seq !== searchSeq) return; // a newer search is on its way
  els.searchNote.textContent = hits.length
    ? `${hits.length === 20 ? 'The first 20 runners' : hits.length === 1 ? '1 runner' : `${hits.length} runners`} matching “${query}”.`
    : `No runner matches “${query}”.`;
  els.searchResults.replaceChildren(...hits.filter((hit) => hit && typeof hit.bib === 'string').map(hitItem));
}

function hitItem(hit) {
  const race = page.races.get(hit.race);
  const following = page.followed.includes(hit.bib);
  const detail = [`Bib ${hit.bib}`, race ? race.name : hit.race, hit.category, hit.club, hit.nation].filter(Boolean).join(' · ');
  return h(
    'li',
    { dataset: { bib: hit.bib } },
    h('div', { class: 'who' }, h('strong', {}, hit.name), h('small', {}, detail)),
    h(
      'button',
      {
        type: 'button',
        class: following ? 'secondary' : null,
        dataset: { follow: hit.bib },
        'aria-pressed': following ? 'true' : 'false',
        'aria-label': `${following ? 'Following' : 'Follow'} ${hit.name}, bib ${hit.bib}`,
      },
      following ? '✔ Following' : 'Follow',
    ),
  );
}

function refreshHits() {
  for (const li of els.searchResults.children) {
    const button = li.querySelector('button[data-follow]');
    const following = page.followed.includes(li.dataset.bib);
    button.textContent = following ? '✔ Following' : 'Follow';
    button.classList.toggle('secondary', following);
    button.setAttribute('aria-pressed', following ? 'true' : 'false');
    button.setAttribute('aria-label', button.getAttribute('aria-label').replace(/^(Following|Follow) /, following ? 'Following ' : 'Follow '));
  }
}

// ---------------------------------------------------------------------------------------------
// Followed runners.

function follow(bib) {
  if (page.followed.includes(bib)) {
    unfollow(bib);
    return;
  }
  if (page.followed.length >= MAX_FOLLOWED) {
    showError(els.error, new Error(`You follow ${MAX_FOLLOWED} runners already: unfollow one first.`));
    return;
  }
  showError(els.error, null);
  page.followed.unshift(bib);
  followedStore.set(page.followed);
  page.runners.set(bib, { view: null, error: null, nPassed: null });
  page.feed.subscribe({ kind: 'runner', bib });
  refreshHits();
  schedule('runners');
}

function unfollow(bib) {
  page.followed = page.followed.filter((b) => b !== bib);
  followedStore.set(page.followed);
  page.runners.delete(bib);
  page.feed.unsubscribe({ kind: 'runner', bib });
  refreshHits();
  schedule('runners');
}

function onRunner(m) {
  const r = m.runner;
  if (!r || typeof r.bib !== 'string') return;
  const state = page.runners.get(r.bib);
  if (!state) return;
  const passed = Array.isArray(r.splits) ? r.splits.filter((s) => num(s.at_us) !== null) : [];
  for (const s of passed) seen(s.at_us);
  if (state.nPassed !== null && passed.length > state.nPassed) {
    const s = passed[passed.length - 1];
    els.announce.textContent = `${r.first_name} ${r.last_name} passed ${s.name} at ${formatInstant(s.at_us, page.zone)}${s.chip ? `, chip time ${s.chip.text}` : ''}.`;
  }
  state.nPassed = passed.length;
  state.view = r;
  state.error = null;
  schedule('runners');
}

/** Where the runner is (metres), and whether that is an estimate between splits. */
function position(r, nowUs) {
  const measured = { m: num(r.distance_m) ?? 0, estimated: false };
  const p = r.prediction;
  if (r.status !== 'running' || !p || nowUs === null) return measured;
  const passed = r.splits.filter((s) => num(s.at_us) !== null);
  const last = passed.length ? passed[passed.length - 1] : num(r.start_at_us) !== null ? { distance_m: 0, at_us: r.start_at_us } : null;
  if (!last || !(p.next_at_us > last.at_us) || !(p.next_distance_m > last.distance_m)) return measured;
  const fraction = Math.min(Math.max((nowUs - last.at_us) / (p.next_at_us - last.at_us), 0), 0.98);
  return { m: last.distance_m + fraction * (p.next_distance_m - last.distance_m), estimated: true };
}

function ordinalPlace(n) {
  return num(n) === null ? '—' : formatNumber(n);
}

function untilWords(us, nowUs) {
  if (nowUs === null) return '';
  const minutes = Math.round((us - nowUs) / 60e6);
  if (minutes > 0) return `in ${minutes} min`;
  if (minutes < 0) return `${-minutes} min ago`;
  return 'about now';
}

function runnerCard(bib, state) {
  const r = state.view;
  if (!r) {
    return [
      h('header', {}, h('h3', {}, `Bib ${bib}`)),
      state.error ? h('p', { class: 'bad' }, state.error) : h('p', { class: 'muted' }, page.live.state === 'open' ? 'Loading…' : 'Waiting for the live feed…'),
      h('footer', {}, unfollowButton(bib, `bib ${bib}`)),
    ];
  }
  const name = `${r.first_name} ${r.last_name}`.trim();
  const nowUs = serverNow();
  const headingId = `runner-${bib}-heading`;
  const meta = [`Bib ${r.bib}`, r.race_name, r.category, r.club, r.nation].filter(Boolean).join(' · ');

  const facts = [];
  if (r.chip_time || r.gun_time) {
    facts.push(fact('Chip time', r.chip_time ? r.chip_time.text : '—', 'chip-time'));
    facts.push(fact('Gun time', r.gun_time ? r.gun_time.text : '—', 'gun-time'));
  }
  const places = r.places || {};
  if (r.ranked && [places.overall, places.gender, places.category].some((p) => num(p) !== null)) {
    facts.push(fact('Overall', ordinalPlace(places.overall), 'place', { place: 'overall' }));
    facts.push(fact(GENDER_WORDS[r.gender] || r.gender, ordinalPlace(places.gender), 'place', { place: 'gender' }));
    if (r.category) facts.push(fact(r.category, ordinalPlace(places.category), 'place', { place: 'category' }));
  }

  const p = r.prediction;
  const overdue = p && (p.overdue === true || (nowUs !== null && nowUs > p.next_at_us));
  const nextIsFinish = p && p.next_at_us === p.finish_at_us;
  const when = (us) => [
    h('span', { class: 'num eta' }, formatInstant(us, page.zone)),
    ' ',
    overdue ? badge('warn', '⏱', 'Overdue') : h('small', {}, untilWords(us, nowUs)),
  ];
  const prediction = p
    ? h(
        'div',
        { class: ['prediction', overdue ? 'overdue' : null], dataset: { overdue: overdue ? 'true' : 'false' } },
        nextIsFinish
          ? null
          : h('p', { class: 'next' }, h('span', { class: 'label' }, 'Expected at '), h('strong', {}, p.next_name), ' ', when(p.next_at_us)),
        h(
          'p',
          { class: 'finish' },
          h('span', { class: 'label' }, 'Predicted finish '),
          nextIsFinish ? when(p.finish_at_us) : h('span', { class: 'num' }, formatInstant(p.finish_at_us, page.zone)),
          h('br', {}),
          h('strong', { class: 'num' }, p.finish_chip ? p.finish_chip.text : '—'),
          ' ',
          h('small', {}, `chip time, at ${p.pace ? p.pace.text : '—'}/km (${p.basis === 'declared' ? 'the declared time' : 'the last segment’s pace'})`),
        ),
      )
    : null;

  const where = position(r, nowUs);
  const total = num(r.race_distance_m) || Math.max(...r.splits.map((s) => s.distance_m), 1);
  const whereText =
    r.status === 'finished'
      ? `Finished: ${formatKm(total)}`
      : where.estimated
        ? `About ${formatKm(Math.round(where.m / 100) * 100)} of ${formatKm(total)} (estimated)`
        : where.m > 0
          ? `Last seen at ${formatKm(where.m)} of ${formatKm(total)}`
          : r.start_at_us !== null && r.start_at_us !== undefined
            ? `Started; ${formatKm(total)} to go`
            : `Not started yet; ${formatKm(total)}`;
  const profile = courseProfile({
    distance_m: total,
    splits: r.splits.map((s) => ({ name: s.name, distance_m: s.distance_m, passed: num(s.at_us) !== null })),
    at_m: r.start_at_us !== null && r.start_at_us !== undefined ? where.m : null,
    estimated: where.estimated,
    label: `Along the course: ${whereText}.`,
  });

  const rows = r.splits.map((s, i) => {
    const passedHere = num(s.at_us) !== null;
    const predictedHere = !passedHere && p && p.next_point === s.point;
    return h(
      'tr',
      { dataset: { point: s.point }, class: [passedHere ? 'passed' : 'ahead', predictedHere ? 'next' : null] },
      h('th', { scope: 'row', title: s.name }, formatKm(s.distance_m), h('small', { class: 'point-name' }, s.name)),
      h(
        'td',
        { class: 'num at' },
        passedHere
          ? formatInstant(s.at_us, page.zone)
          : predictedHere
            ? h('span', { class: 'predicted', title: 'predicted' }, `≈ ${formatInstant(p.next_at_us, page.zone)}`)
            : '—',
      ),
      h('td', { class: 'num chip' }, s.chip ? s.chip.text : '—'),
      h('td', { class: 'num pace' }, i > 0 && s.segment_pace ? s.segment_pace.text : '—'),
    );
  });
  const splits = h(
    'table',
    { class: 'splits' },
    h('caption', { class: 'sr-only' }, `Splits of ${name}`),
    h(
      'thead',
      {},
      h('tr', {}, h('th', { scope: 'col' }, 'Point'), h('th', { scope: 'col' }, 'Time of day'), h('th', { scope: 'col' }, 'Chip'), h('th', { scope: 'col' }, 'Pace /km')),
    ),
    h('tbody', {}, rows),
  );

  const segments = [];
  let from = 0;
  for (const s of r.splits) {
    if (num(s.at_us) === null) continue;
    if (s.segment_pace && num(s.segment_pace.ms) !== null && s.distance_m > from) {
      segments.push({ from_m: from, to_m: s.distance_m, pace_ms: s.segment_pace.ms, text: s.segment_pace.text });
    }
    from = s.distance_m;
  }
  const paceLabel = segments.length
    ? `Pace per segment of ${name}: ${segments.map((s) => `${formatKm(s.from_m)} to ${formatKm(s.to_m)}, ${s.text} per km`).join('; ')}.`
    : null;

  return [
    h('header', {}, h('h3', { id: headingId }, name), statusBadge(r.status)),
    h('p', { class: 'meta muted' }, meta),
    r.flags && r.flags.length && r.status === 'review' ? h('p', { class: 'muted' }, h('small', {}, `Being checked: ${r.flags.join(', ').replaceAll('_', ' ')}`)) : null,
    facts.length ? h('dl', { class: 'facts' }, facts) : null,
    prediction,
    h('figure', { class: 'where' }, profile, h('figcaption', { class: 'muted' }, whereText)),
    splits,
    segments.length
      ? h('figure', { class: 'pace-chart' }, paceBars(segments, paceLabel), h('figcaption', { class: 'sr-only' }, paceLabel))
      : null,
    h('footer', {}, unfollowButton(bib, name)),
  ];
}

function fact(label, value, className, dataset) {
  return h('div', {}, h('dt', {}, label), h('dd', { class: ['num', className], dataset }, value));
}

function unfollowButton(bib, name) {
  return h('button', { type: 'button', class: 'secondary unfollow', dataset: { unfollow: bib }, 'aria-label': `Unfollow ${name}` }, 'Unfollow');
}

function renderRunners() {
  els.followedEmpty.hidden = page.followed.length > 0;
  els.followedCount.textContent = page.followed.length ? `(${page.followed.length})` : '';
  const cards = page.followed.map((bib) => {
    const state = page.runners.get(bib) || { view: null };
    let card = els.runners.querySelector(`article[data-bib="${CSS.escape(bib)}"]`);
    if (!card) card = h('article', { class: 'card runner', dataset: { bib }, 'aria-labelledby': `runner-${bib}-heading` });
    card.dataset.status = state.view ? state.view.status : 'loading';
    card.replaceChildren(...runnerCard(bib, state).filter(Boolean));
    return card;
  });
  els.runners.replaceChildren(...cards);
}

// ---------------------------------------------------------------------------------------------
// Leaderboard.

function boardTopic() {
  const race = els.boardRace.value;
  const list = els.boardList.value || 'overall';
  const topic = { kind: 'leaderboard', race, division: els.boardDivision.value || 'running', top: Number(els.boardTop.value) || 10 };
  if (list.startsWith('gender:')) topic.gender = list.slice(7);
  if (list.startsWith('category:')) topic.category = list.slice(9);
  return topic;
}

function fillBoardLists(keep) {
  const race = page.races.get(els.boardRace.value);
  if (!race) return;
  const divisions = Array.isArray(race.divisions) && race.divisions.length ? race.divisions : ['running'];
  els.boardDivision.replaceChildren(...divisions.map((d) => h('option', { value: d }, d)));
  els.boardDivisionLabel.hidden = divisions.length < 2;
  if (keep && divisions.includes(keep.division)) els.boardDivision.value = keep.division;
  else els.boardDivision.value = divisions.includes('running') ? 'running' : divisions[0];
  const division = els.boardDivision.value;
  const categories = (race.categories || []).filter((c) => (c.division || 'running') === division);
  const genders = ['F', 'M'];
  if (categories.some((c) => c.gender === 'X')) genders.push('X');
  els.boardList.replaceChildren(
    h('option', { value: 'overall' }, 'Overall'),
    ...genders.map((g) => h('option', { value: `gender:${g}` }, GENDER_WORDS[g])),
    categories.length
      ? h('optgroup', { label: 'Categories' }, categories.map((c) => h('option', { value: `category:${c.code}` }, c.code)))
      : null,
  );
  const wanted = keep ? (keep.category ? `category:${keep.category}` : keep.gender ? `gender:${keep.gender}` : 'overall') : 'overall';
  els.boardList.value = [...els.boardList.querySelectorAll('option')].some((o) => o.value === wanted) ? wanted : 'overall';
}

function changeBoard() {
  const topic = boardTopic();
  if (page.board.topic) page.feed.unsubscribe(page.board.topic);
  page.board = { topic, key: topicKey(topic), rows: [], marks: new Map(), snapshotAt: null };
  boardStore.set(topic);
  page.feed.subscribe(topic);
  schedule('board');
}

function onBoard(m) {
  const b = page.board;
  const rows = Array.isArray(m.rows) ? m.rows.filter((r) => r && num(r.position) !== null && r.position >= 1) : [];
  const now = performance.now();
  if (m.snapshot) {
    b.rows = [];
    b.marks = new Map();
    b.snapshotAt = now;
  }
  for (const row of rows) {
    b.rows[row.position - 1] = row;
    if (!m.snapshot) {
      let move = null;
      if (row.prev_place === null || row.prev_place === undefined) move = { kind: 'new', text: 'new', words: 'new on the list' };
      else if (row.prev_place > row.place) move = { kind: 'up', text: `▲ ${row.prev_place - row.place}`, words: `up ${row.prev_place - row.place}` };
      else if (row.prev_place < row.place) move = { kind: 'down', text: `▼ ${row.place - row.prev_place}`, words: `down ${row.place - row.prev_place}` };
      b.marks.set(row.bib, { move, flashUntil: now + FLASH_MS, moveUntil: now + MOVE_SHOWN_MS });
    }
  }
  const length = num(m.length);
  if (length !== null) b.rows.length = Math.min(b.rows.length, length);
  schedule('board');
  // Highlights end by themselves.
  setTimeout(() => schedule('board'), FLASH_MS + 50);
}

function renderBoard() {
  const b = page.board;
  const race = page.races.get(b.topic ? b.topic.race : '');
  const listName = els.boardList.selectedOptions[0] ? els.boardList.selectedOptions[0].textContent : '';
  els.boardCaption.textContent = `Leaderboard: ${race ? race.name : ''}, ${listName}`;
  const now = performance.now();
  const rows = b.rows.filter(Boolean);
  if (race && race.ranked === false) {
    els.boardNote.textContent = 'This race publishes no places.';
  } else if (b.snapshotAt === null) {
    els.boardNote.textContent = 'Loading…';
  } else if (!rows.length) {
    els.boardNote.textContent = 'Nobody has finished yet.';
  } else {
    // (`size` is sent only when the head changes, so it is not shown: it would go stale.)
    els.boardNote.textContent = rows.length === 1 ? 'The first place.' : `The first ${rows.length} places.`;
  }
  els.boardRows.replaceChildren(
    ...rows.map((row) => {
      const mark = b.marks.get(row.bib);
      const move = mark && mark.moveUntil > now ? mark.move : null;
      const flash = mark && mark.flashUntil > now;
      const detail = [`Bib ${row.bib}`, row.nation, row.category, row.club].filter(Boolean).join(' · ');
      return h(
        'tr',
        { dataset: { bib: row.bib, position: String(row.position), place: String(row.place) }, class: flash ? 'flash' : null },
        h('td', { class: 'num place' }, String(row.place)),
        h(
          'td',
          { class: ['move', move ? move.kind : null] },
          move ? [h('span', { 'aria-hidden': 'true' }, move.text), h('span', { class: 'sr-only' }, move.words)] : null,
        ),
        h('td', { class: 'runner' }, h('div', { class: 'who' }, h('span', { class: 'name' }, row.name), h('small', {}, detail))),
        h('td', { class: 'num time' }, row.time ? row.time.text : '—'),
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Arrivals at the finish.

function finishPoints() {
  const points = [];
  for (const race of page.races.values()) {
    const last = race.splits && race.splits[race.splits.length - 1];
    if (last && !points.some((p) => p.point === last.point)) points.push({ point: last.point, name: last.name });
  }
  return points;
}

function changeArrivals() {
  const point = els.arrivalsPoint.value;
  if (!point) return;
  const topic = { kind: 'arrivals', point };
  if (page.arrivals.topic) page.feed.unsubscribe(page.arrivals.topic);
  page.arrivals = { topic, key: topicKey(topic), items: [], received: false };
  page.feed.subscribe(topic);
  schedule('arrivals');
}

function onArrivals(m) {
  const a = page.arrivals;
  const items = Array.isArray(m.items) ? m.items.filter((i) => i && typeof i.bib === 'string' && num(i.at_us) !== null) : [];
  if (m.snapshot) {
    a.items = items.slice();
  } else {
    const gone = new Set(Array.isArray(m.removed) ? m.removed : []);
    for (const i of items) gone.add(i.bib);
    a.items = items.concat(a.items.filter((i) => !gone.has(i.bib)));
  }
  a.items.sort((x, y) => y.at_us - x.at_us);
  if (a.items.length) seen(a.items[0].at_us);
  a.items.length = Math.min(a.items.length, ARRIVALS_KEPT);
  a.received = true;
  schedule('arrivals');
}

function renderArrivals() {
  const a = page.arrivals;
  const shown = page.arrivalsAll ? a.items : a.items.slice(0, ARRIVALS_SHOWN);
  els.arrivalsNote.textContent = !a.received ? 'Loading…' : a.items.length ? `The latest ${shown.length}, newest first.` : 'Waiting for the first finisher.';
  els.arrivalsMore.hidden = a.items.length <= ARRIVALS_SHOWN;
  els.arrivalsMore.textContent = page.arrivalsAll ? `Show the latest ${ARRIVALS_SHOWN}` : `Show the latest ${a.items.length}`;
  els.arrivalsMore.setAttribute('aria-expanded', page.arrivalsAll ? 'true' : 'false');
  els.arrivals.replaceChildren(
    ...shown.map((i) => {
      const race = page.races.get(i.race);
      return h(
        'li',
        { dataset: { bib: i.bib } },
        h('span', { class: 'num at' }, formatInstant(i.at_us, page.zone)),
        h('span', { class: 'who' }, h('strong', {}, i.name), h('small', {}, [`Bib ${i.bib}`, race ? race.name : i.race].join(' · '))),
        h(
          'span',
          { class: 'num result' },
          h('span', { class: 'chip' }, i.chip ? i.chip.text : '—'),
          num(i.place) !== null ? h('small', { class: 'place' }, ` place ${formatNumber(i.place)}`) : null,
        ),
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Pictures.

async function refreshCharts() {
  const figures = [];
  let failed = null;
  for (const race of page.races.values()) {
    let stats;
    try {
      stats = await getJSON(`/api/v1/stats/${encodeURIComponent(race.id)}`);
    } catch (e) {
      failed = e;
      continue;
    }
    const hist = histogram(stats, race.name);
    const minute = perMinute(stats, race.name, page.zone);
    const counts = `${formatNumber(num(stats.n_finished) ?? 0)} finished · ${formatNumber(num(stats.n_running) ?? 0)} on the course · ${formatNumber(num(stats.n_not_started) ?? 0)} not started`;
    figures.push(
      h(
        'article',
        { class: 'race-charts', dataset: { race: race.id, finished: String(num(stats.n_finished) ?? 0) } },
        h('h3', {}, race.name),
        h('p', { class: 'counts' }, counts),
        h('figure', { class: 'histogram' }, h('figcaption', {}, h('strong', {}, 'Finish times. '), hist.text), hist.svg),
        h('figure', { class: 'per-minute' }, h('figcaption', {}, h('strong', {}, 'Finishers per minute. '), minute.text), minute.svg),
      ),
    );
  }
  if (figures.length) els.charts.replaceChildren(...figures);
  els.chartsUpdated.textContent = failed ? `Could not refresh: ${failed.message}` : '';
}

// ---------------------------------------------------------------------------------------------
// The live feed.

function renderLive() {
  const l = page.live;
  const now = serverNow();
  const clock = now !== null ? ` · race clock ${formatInstant(now, page.zone)}` : '';
  els.liveState.dataset.nowUs = now === null ? '' : String(Math.floor(now));
  if (l.state === 'open') {
    els.liveState.textContent = `● Live${clock}`;
    els.liveState.dataset.state = 'open';
  } else if (l.state === 'waiting') {
    els.liveState.textContent = `Connection lost; retrying in ${Math.max(1, Math.round(l.retryInMs / 1000))} s${clock}`;
    els.liveState.dataset.state = 'waiting';
  } else {
    els.liveState.textContent = `Connecting…${clock}`;
    els.liveState.dataset.state = 'connecting';
  }
}

function onMessage(m, key) {
  switch (m.type) {
    case 'tick':
      if (num(m.now_us) !== null) {
        page.tickUs = m.now_us;
        page.tickAt = performance.now();
        schedule('live', 'runners');
      }
      break;
    case 'runner':
      onRunner(m);
      break;
    case 'leaderboard':
      if (key === page.board.key) onBoard(m);
      break;
    case 'arrivals':
      if (key === page.arrivals.key) onArrivals(m);
      break;
    case 'error': {
      const t = m.topic;
      if (t && t.kind === 'runner' && page.runners.has(t.bib)) {
        page.runners.get(t.bib).error = m.error;
        page.feed.forget(t);
        schedule('runners');
      } else {
        showError(els.error, new Error(`Live feed: ${m.error}`));
      }
      break;
    }
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Start.

async function loadEvent() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const event = await getJSON('/api/v1/event');
      if (!event || !Array.isArray(event.races)) throw new Error('/api/v1/event: not an event');
      showError(els.error, null);
      return event;
    } catch (e) {
      showError(els.error, new Error(`Cannot load the event (${e.message}); trying again.`));
      await new Promise((resolve) => setTimeout(resolve, Math.min(30000, 2000 * 2 ** attempt)));
    }
  }
}

async function main() {
  const [{ zone, fromEvent }, event] = await Promise.all([loadEventZone(), loadEvent()]);
  page.zone = zone;
  page.event = event;
  if (num(event.now_us) !== null) {
    page.tickUs = event.now_us;
    page.tickAt = performance.now();
  }
  els.zoneNote.textContent = `Times of day are in ${zone} (${fromEvent ? "the event's zone" : "this device's zone"}).`;
  if (typeof event.name === 'string' && event.name) {
    els.eventName.textContent = event.name;
    document.title = `${event.name} · live results`;
  }
  for (const race of event.races) if (race && typeof race.id === 'string') page.races.set(race.id, race);

  page.feed = new LiveFeed({
    onMessage,
    onState: (s) => {
      page.live = s;
      document.body.dataset.connects = String(page.feed.nConnects);
      schedule('live', 'runners');
    },
  });

  // Search.
  const debounced = debounce((q) => search(q), SEARCH_DEBOUNCE_MS);
  els.search.addEventListener('input', () => debounced(els.search.value));
  els.searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    search(els.search.value);
  });
  els.searchResults.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-follow]');
    if (button) follow(button.dataset.follow);
  });
  els.runners.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-unfollow]');
    if (button) unfollow(button.dataset.unfollow);
  });

  // Followed runners from this device.
  const saved = followedStore.get();
  page.followed = Array.isArray(saved) ? saved.filter((b) => typeof b === 'string' && b).slice(0, MAX_FOLLOWED) : [];
  for (const bib of page.followed) {
    page.runners.set(bib, { view: null, error: null, nPassed: null });
    page.feed.subscribe({ kind: 'runner', bib });
  }
  schedule('runners');

  // Leaderboard: the last choice on this device, else the first race overall.
  els.boardRace.replaceChildren(...[...page.races.values()].map((r) => h('option', { value: r.id }, r.name)));
  const keep = boardStore.get();
  if (keep && page.races.has(keep.race)) {
    els.boardRace.value = keep.race;
    els.boardTop.value = String([10, 20, 50, 100].includes(Number(keep.top)) ? keep.top : 10);
  }
  fillBoardLists(keep);
  els.boardRace.addEventListener('change', () => {
    fillBoardLists(null);
    changeBoard();
  });
  els.boardDivision.addEventListener('change', () => {
    fillBoardLists({ ...boardTopic(), category: null, gender: null });
    changeBoard();
  });
  els.boardList.addEventListener('change', changeBoard);
  els.boardTop.addEventListener('change', changeBoard);
  changeBoard();

  // Arrivals at the finish line (a select when races finish at different points).
  const points = finishPoints();
  els.arrivalsPoint.replaceChildren(...points.map((p) => h('option', { value: p.point }, p.name)));
  els.arrivalsPointLabel.hidden = points.length < 2;
  els.arrivalsPoint.addEventListener('change', changeArrivals);
  els.arrivalsMore.addEventListener('click', () => {
    page.arrivalsAll = !page.arrivalsAll;
    schedule('arrivals');
  });
  changeArrivals();

  page.feed.start();
  // For diagnostics from the browser's console (and the scale test): what the feed has cost.
  window.racetimeFeed = page.feed;
  poll(refreshCharts, CHARTS_MS);
  document.body.dataset.ready = 'true';
}

main();
