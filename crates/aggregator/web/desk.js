// The results desk: the review queue with one-click decisions, each wave's gun and every claim
// about it, a form for every kind of correction, the audit log with Undo, and exports.
//
// Every desk route needs `Authorization: Bearer <desk token>`. The token is asked for once and
// kept in this tab's sessionStorage (gone when the tab closes); a 401 or 403 signs out with the
// aggregator's reason. Every correction carries who (the name given at sign-in, editable in the
// form) and why; the aggregator refuses one without them, and so does this page.
//
// Views refresh every REFRESH_MS and right after each action. A refresh keeps a row whose data
// did not change, so an open inline form (a reason being typed) survives it.

import {
  ApiError,
  formatInstant,
  formatLocalDateTime,
  formatNumber,
  formatRfc3339,
  getJSON,
  h,
  loadEventZone,
  num,
  poll,
  request,
  showError,
  stored,
} from './common.js';

const REFRESH_MS = 10000;
/** The review queue can be long at a big race: the first ones are shown. */
const REVIEW_SHOWN = 100;
const AUDIT_SHOWN = 200;

const $ = (id) => document.getElementById(id);
const els = {
  updated: $('updated'),
  error: $('error'),
  notice: $('notice'),
  signinSection: $('signin-section'),
  signin: $('signin'),
  token: $('token'),
  signinWho: $('signin-who'),
  desk: $('desk'),
  whoName: $('who-name'),
  signout: $('signout'),
  review: $('review'),
  reviewCount: $('review-count'),
  reviewMore: $('review-more'),
  gunRows: $('gun-rows'),
  correction: $('correction'),
  kind: $('c-kind'),
  who: $('c-who'),
  why: $('c-why'),
  passingPoint: $('c-passing-point'),
  gunRace: $('c-gun-race'),
  gunWave: $('c-gun-wave'),
  offsetPoint: $('c-offset-point'),
  auditRows: $('audit-rows'),
  auditCount: $('audit-count'),
  exportForm: $('export'),
  xRace: $('x-race'),
  xGender: $('x-gender'),
  xCategory: $('x-category'),
  xPrecision: $('x-precision'),
  zoneNote: $('zone-note'),
};

const tokenStore = stored(window.sessionStorage, 'racetime.desk.token', null);
const whoStore = stored(window.sessionStorage, 'racetime.desk.who', null);

const page = {
  token: null,
  who: '',
  zone: undefined,
  event: null,
  races: new Map(),
  points: [],
  lastOkAt: null,
  busy: false,
};

// ---------------------------------------------------------------------------------------------
// Talking to the aggregator.

/** A desk request; a 401 or 403 signs out and says why. */
async function desk(url, options = {}) {
  if (!page.token) throw new ApiError('Sign in first.', 401);
  try {
    return await getJSON(url, { ...options, token: page.token });
  } catch (e) {
    if (e.status === 401 || e.status === 403) signOut(refusal(e));
    throw e;
  }
}

function refusal(e) {
  const detail = e.message.replace(/^[^:]*: \d+ /, '');
  if (e.status === 401) return `The aggregator asks for the desk token (${detail}). Sign in again.`;
  if (/disabled/.test(detail)) return `The results desk is disabled on this aggregator (${detail}).`;
  return `That is not the desk token (${detail}). Sign in again.`;
}

/** Posts a correction; says what happened; refreshes every view. */
async function correct(correction, why, whoOverride) {
  const who = (whoOverride ?? page.who).trim();
  if (!who || !why || !why.trim()) {
    showError(els.error, new Error('A correction needs who and why: the audit log records both.'));
    return null;
  }
  return act(() => desk('/api/v1/desk/corrections', { method: 'POST', body: { v: 1, who, why: why.trim(), correction } }));
}

async function undo(id, why) {
  return act(() => desk(`/api/v1/desk/undo/${encodeURIComponent(id)}`, { method: 'POST', body: { v: 1, who: page.who, why } }));
}

async function act(send) {
  showError(els.error, null);
  let entry;
  try {
    entry = await send();
  } catch (e) {
    // A refused token has signed out already, saying why.
    if (e.status !== 401 && e.status !== 403) showError(els.error, new Error(`Not recorded: ${e.message}`));
    return null;
  }
  notice(`Recorded entry #${entry.id}: ${describe(entry.correction)}${entry.undoes ? ` (undoes #${entry.undoes})` : ''}.`);
  await refresh();
  return entry;
}

function notice(text) {
  els.notice.textContent = text;
  els.notice.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// Sign in and out.

function signIn(token, who) {
  page.token = token;
  page.who = who;
  tokenStore.set(token);
  whoStore.set(who);
  els.whoName.textContent = who;
  if (!els.who.value) els.who.value = who;
  els.signinSection.hidden = true;
  els.desk.hidden = false;
}

function signOut(message) {
  page.token = null;
  tokenStore.set(null);
  els.desk.hidden = true;
  els.signinSection.hidden = false;
  els.token.value = '';
  notice('');
  showError(els.error, message ? new Error(message) : null);
  els.token.focus();
}

// ---------------------------------------------------------------------------------------------
// Words for what the desk sees.

function instantText(us) {
  return num(us) === null ? '—' : formatInstant(us, page.zone);
}

/** A time of day to the hundredth, `21:00:03.25` (the date is in the edit fields and tooltips). */
function clockText(us) {
  return num(us) === null ? '—' : formatLocalDateTime(us, page.zone).slice(11);
}

function jitterText(us) {
  if (!num(us)) return '';
  return us >= 1e6 ? ` ±${formatNumber(us / 1e6, 1)} s` : ` ±${formatNumber(us / 1000)} ms`;
}

/** An `at` as sent (RFC 3339, or a local time in the event's zone) in words. */
function atText(at) {
  if (typeof at !== 'string' || !at) return null;
  if (/([zZ]|[+-]\d\d:?\d\d)$/.test(at.trim())) {
    const ms = Date.parse(at);
    if (Number.isFinite(ms)) {
      const frac = at.match(/\.(\d+)/);
      const us = ms * 1000 + (frac ? Number(frac[1].padEnd(6, '0').slice(3, 6)) : 0);
      return formatLocalDateTime(us, page.zone);
    }
  }
  return at;
}

function raceName(id) {
  const r = page.races.get(id);
  return r ? r.name : id;
}

function describe(c) {
  if (!c || typeof c !== 'object') return 'unknown';
  switch (c.kind) {
    case 'gun_time':
      return `Gun of ${c.race}/${c.wave}: ${atText(c.at) ?? 'desk time removed'}`;
    case 'manual_passing':
      return `Manual passing of bib ${c.bib} at ${c.point}: ${atText(c.at) ?? 'removed'}`;
    case 'status':
      return `Status of bib ${c.bib}: ${c.status ?? 'override removed (computed status)'}`;
    case 'assign_chip':
      return c.bib ? `Chip ${c.chip} assigned to bib ${c.bib}` : `Chip ${c.chip} unassigned`;
    case 'clock_offset':
      return `Clock offset at ${c.point}: ${formatNumber(c.offset_ms)} ms`;
    default:
      return String(c.kind);
  }
}

function badge(kind, icon, text) {
  return h('span', { class: ['badge', kind] }, h('span', { 'aria-hidden': 'true' }, `${icon} `), text);
}

// ---------------------------------------------------------------------------------------------
// Inline forms: a reason, a time or a bib typed next to the item it is about.

/**
 * Opens (or closes, if open) a small form inside `host` with `fields`
 * (`[{ name, label, value, placeholder, options, required }]`) and a submit button; `onSubmit`
 * gets the values and returns a promise (the form closes when it resolves to something).
 */
function toggleInline(host, { id, fields, submit, danger, onSubmit }) {
  const open = host.querySelector('form.inline');
  if (open) {
    const same = open.dataset.form === id;
    open.remove();
    if (same) return;
  }
  const inputs = fields.map((f) => {
    const control = f.options
      ? h('select', { name: f.name }, f.options.map(([value, text]) => h('option', { value, selected: value === f.value }, text)))
      : h('input', { name: f.name, value: f.value ?? '', placeholder: f.placeholder, required: f.required !== false, autocomplete: 'off' });
    return h('label', {}, f.label, ' ', control);
  });
  const form = h(
    'form',
    { class: 'inline', dataset: { form: id } },
    inputs,
    h('button', { type: 'submit', class: danger ? 'danger' : null }, submit),
    h('button', { type: 'button', class: 'secondary', dataset: { cancel: '' } }, 'Cancel'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    for (const button of form.querySelectorAll('button')) button.disabled = true;
    const done = await onSubmit(values);
    if (done) form.remove();
    else for (const button of form.querySelectorAll('button')) button.disabled = false;
  });
  form.querySelector('[data-cancel]').addEventListener('click', () => form.remove());
  host.append(form);
  const first = form.querySelector('input, select');
  if (first) first.focus();
}

function actionButton(text, attrs, onClick) {
  const b = h('button', { type: 'button', class: 'secondary', ...attrs }, text);
  b.addEventListener('click', onClick);
  return b;
}

// ---------------------------------------------------------------------------------------------
// The review queue.

function reviewKey(item) {
  switch (item.kind) {
    case 'result':
      return `result/${item.bib}`;
    case 'unknown_chip':
      return `unknown_chip/${item.chip}`;
    case 'wrong_race':
      return `wrong_race/${item.bib}/${item.point}`;
    case 'stray':
      return `stray/${item.chip}/${item.point}/${item.line}`;
    case 'gun_conflict':
      return `gun_conflict/${item.race}/${item.wave}`;
    default:
      return `other/${JSON.stringify(item)}`;
  }
}

function statusActions(item, host) {
  const name = item.name || `bib ${item.bib}`;
  const reasonForm = (status, submit, placeholder) => () =>
    toggleInline(host, {
      id: `status-${status}`,
      fields: [{ name: 'why', label: 'Reason', placeholder }],
      submit,
      danger: status === 'DSQ',
      onSubmit: (v) => correct({ kind: 'status', bib: item.bib, status }, v.why),
    });
  return [
    actionButton('Accept', { dataset: { action: 'accept' }, 'aria-label': `Accept the result of ${name}` }, () =>
      correct(
        { kind: 'status', bib: item.bib, status: 'accept' },
        `accepted after review${item.flags && item.flags.length ? ` (${item.flags.join(', ')})` : ''}`,
      ),
    ),
    actionButton('DNF…', { dataset: { action: 'dnf' }, 'aria-label': `Did not finish: ${name}` }, reasonForm('DNF', 'Record DNF', 'e.g. stopped at km 30 (medical tent)')),
    actionButton('DSQ…', { class: 'danger secondary', dataset: { action: 'dsq' }, 'aria-label': `Disqualify ${name}` }, reasonForm('DSQ', 'Disqualify', 'e.g. cut the course (marshal at km 12)')),
  ];
}

function reviewItem(item) {
  const host = h('li', { class: item.kind, dataset: { kind: item.kind, key: reviewKey(item), bib: item.bib || null } });
  const actions = h('div', { class: 'actions' });
  switch (item.kind) {
    case 'result': {
      const missing = Array.isArray(item.missing) ? item.missing : [];
      host.append(
        h('div', {}, badge('warn', '⚠', 'In review'), ' ', h('strong', {}, item.name), ` · bib ${item.bib} · ${raceName(item.race)}`),
        h('div', {}, h('small', {}, [
          item.flags && item.flags.length ? `Flags: ${item.flags.join(', ').replaceAll('_', ' ')}.` : null,
          missing.length ? ` No passing at ${missing.join(', ')}.` : null,
        ].filter(Boolean).join(''))),
      );
      const points = pointsOfRace(item.race);
      actions.append(
        ...statusActions(item, host),
        actionButton('Manual passing…', { dataset: { action: 'manual' }, 'aria-label': `Manual passing for ${item.name}` }, () =>
          toggleInline(host, {
            id: 'manual',
            fields: [
              {
                name: 'point',
                label: 'Point',
                value: missing[0],
                options: (missing.length ? points.filter((p) => missing.includes(p.id)) : points).map((p) => [p.id, p.name]),
              },
              { name: 'at', label: 'Time', placeholder: 'YYYY-MM-DD HH:MM:SS' },
              { name: 'why', label: 'Reason', placeholder: 'e.g. photo at the finish camera' },
            ],
            submit: 'Add the passing',
            onSubmit: (v) => correct({ kind: 'manual_passing', bib: item.bib, point: v.point, at: v.at.trim() }, v.why),
          }),
        ),
      );
      break;
    }
    case 'unknown_chip':
      host.append(
        h('div', {}, badge('none', '?', 'Unknown chip'), ' ', h('code', {}, item.chip)),
        h('div', {}, h('small', {}, `${formatNumber(item.n_reads)} reads, first at ${instantText(item.first_seen_us)}${Array.isArray(item.points) && item.points.length ? ` (${item.points.join(', ')})` : ''}.`)),
      );
      actions.append(
        actionButton('Assign to bib…', { dataset: { action: 'assign' } }, () =>
          toggleInline(host, {
            id: 'assign',
            fields: [
              { name: 'bib', label: 'Bib' },
              { name: 'why', label: 'Reason', value: 'spare chip handed out at the start' },
            ],
            submit: 'Assign',
            onSubmit: (v) => correct({ kind: 'assign_chip', chip: item.chip, bib: v.bib.trim() }, v.why),
          }),
        ),
      );
      break;
    case 'wrong_race':
      host.append(
        h('div', {}, badge('none', '↯', 'Wrong race'), ' ', h('strong', {}, item.name), ` · bib ${item.bib} · ${raceName(item.race)}`),
        h('div', {}, h('small', {}, `Crossed ${item.point}, which the ${raceName(item.race)} does not use: ${formatNumber(item.n_crossings)} times, first at ${instantText(item.first_us)}.`)),
      );
      actions.append(...statusActions(item, host).slice(1));
      break;
    case 'stray':
      host.append(
        h('div', {}, badge('none', '…', 'Stray'), ' ', h('code', {}, item.chip), item.bib ? ` · bib ${item.bib}` : ''),
        h('div', {}, h('small', {}, `Read continuously at ${item.point} (${item.line}) from ${instantText(item.first_us)}: a bib lying by the mat; never scored.`)),
      );
      break;
    case 'gun_conflict': {
      host.append(
        h('div', {}, badge('warn', '⚠', 'Gun conflict'), ' ', h('strong', {}, `${raceName(item.race)} / ${item.wave}`), ': the sources disagree.'),
      );
      host.append(claimsList(item.race, item.wave, item.claims, true));
      break;
    }
    default:
      host.append(h('div', {}, JSON.stringify(item)));
  }
  if (actions.childElementCount) host.append(actions);
  return host;
}

function claimsList(race, wave, claims, withUse) {
  const list = Array.isArray(claims) ? claims : [];
  if (!list.length) return h('p', { class: 'muted' }, 'No claims yet.');
  return h(
    'ul',
    { class: 'claims' },
    list.map((c) =>
      h(
        'li',
        { dataset: { source: c.source } },
        h('span', { class: 'num', title: formatLocalDateTime(c.at_us, page.zone) }, clockText(c.at_us)),
        h('small', {}, `${c.source}${jitterText(c.jitter_us)}`),
        withUse
          ? actionButton('Use this claim', { dataset: { action: 'use-claim' }, 'aria-label': `Use the gun time from ${c.source}` }, () =>
              correct({ kind: 'gun_time', race, wave, at: formatRfc3339(c.at_us) }, `gun time from ${c.source}`),
            )
          : null,
      ),
    ),
  );
}

/** Replaces `list`'s children by `items`, keeping the element of an unchanged item (and any form open in it). */
function keyedRender(list, items, keyOf, build) {
  const old = new Map([...list.children].map((e) => [e.dataset.key, e]));
  const next = items.map((item) => {
    const key = keyOf(item);
    const sig = JSON.stringify(item);
    const kept = old.get(key);
    if (kept && kept.dataset.sig === sig) return kept;
    const e = build(item);
    e.dataset.key = key;
    e.dataset.sig = sig;
    return e;
  });
  list.replaceChildren(...next);
}

function renderReview(items) {
  els.reviewCount.textContent = `(${formatNumber(items.length)})`;
  if (!items.length) {
    els.review.replaceChildren(h('li', { class: 'none', dataset: { key: 'none' } }, badge('ok', '✔', 'Nothing to review.')));
  } else {
    keyedRender(els.review, items.slice(0, REVIEW_SHOWN), reviewKey, reviewItem);
  }
  els.reviewMore.hidden = items.length <= REVIEW_SHOWN;
  els.reviewMore.textContent = `The first ${REVIEW_SHOWN} of ${formatNumber(items.length)} are shown; deal with these and the next come up.`;
}

function pointsOfRace(raceId) {
  const race = page.races.get(raceId);
  if (!race || !Array.isArray(race.splits)) return page.points;
  return race.splits.map((s) => ({ id: s.point, name: s.name }));
}

// ---------------------------------------------------------------------------------------------
// Guns.

function gunRow(w) {
  const state = w.conflict && !w.resolved_by_desk
    ? badge('warn', '⚠', 'Conflict')
    : w.resolved_by_desk
      ? badge('ok', '✔', 'Set by the desk')
      : w.scheduled_only
        ? badge('none', '○', 'Scheduled only')
        : badge('ok', '✔', 'Known');
  const row = h(
    'tr',
    { class: w.conflict && !w.resolved_by_desk ? 'conflict' : null, dataset: { wave: `${w.race}/${w.wave}` } },
    h('th', { scope: 'row' }, raceName(w.race), h('div', {}, h('small', { class: 'num' }, `${w.wave} · scheduled ${clockText(w.scheduled_us).replace(/\.\d+$/, '')}`))),
    h('td', { class: 'num in-effect' }, h('div', { title: formatLocalDateTime(w.in_effect_us, page.zone) }, clockText(w.in_effect_us)), state),
    h('td', {}, claimsList(w.race, w.wave, w.claims, w.conflict && !w.resolved_by_desk)),
  );
  const input = h('input', {
    name: 'at',
    value: formatLocalDateTime(w.in_effect_us, page.zone),
    'aria-label': `Gun time of ${raceName(w.race)} ${w.wave}`,
    size: 22,
  });
  const set = h(
    'form',
    { class: 'actions', dataset: { gunForm: '' } },
    input,
    h('button', { type: 'submit', class: 'secondary' }, 'Set'),
  );
  set.addEventListener('submit', (e) => {
    e.preventDefault();
    const at = input.value.trim();
    correct({ kind: 'gun_time', race: w.race, wave: w.wave, at: at || null }, at ? 'gun time entered at the desk' : 'desk gun time removed');
  });
  const now = actionButton('Gun now', { class: null, dataset: { action: 'gun-now' }, 'aria-label': `Gun now for ${raceName(w.race)} ${w.wave}` }, async () => {
    let event;
    try {
      event = await getJSON('/api/v1/event');
    } catch (e) {
      showError(els.error, new Error(`Cannot read the race clock: ${e.message}`));
      return;
    }
    correct({ kind: 'gun_time', race: w.race, wave: w.wave, at: formatRfc3339(event.now_us) }, 'gun fired (desk: gun now)');
  });
  row.append(h('td', {}, now, set));
  return row;
}

function renderGuns(waves) {
  keyedRender(els.gunRows, waves, (w) => `${w.race}/${w.wave}`, gunRow);
}

// ---------------------------------------------------------------------------------------------
// Audit log.

function renderAudit(entries) {
  const undoneBy = new Map();
  for (const e of entries) if (num(e.undoes) !== null) undoneBy.set(e.undoes, e.id);
  const newest = entries.slice().sort((a, b) => b.id - a.id).slice(0, AUDIT_SHOWN);
  els.auditCount.textContent = `(${formatNumber(entries.length)})`;
  const rows = newest.map((e) => ({ ...e, undone_by: undoneBy.get(e.id) ?? null }));
  if (!rows.length) {
    els.auditRows.replaceChildren(h('tr', { dataset: { key: 'none' } }, h('td', { colspan: 6, class: 'muted' }, 'No corrections yet.')));
    return;
  }
  keyedRender(els.auditRows, rows, (e) => String(e.id), auditRow);
}

function auditRow(e) {
  const c = e.correction || {};
  const undoCell = h('td', { class: 'undo' });
  const row = h(
    'tr',
    { class: e.undone_by !== null ? 'undone' : null, dataset: { id: String(e.id), kind: c.kind, bib: c.bib || null } },
    h('td', { class: 'num' }, `#${e.id}`),
    h('td', { class: 'num', title: formatLocalDateTime(e.at_us, page.zone) }, formatInstant(e.at_us, page.zone)),
    h('td', {}, e.who),
    h(
      'td',
      { class: 'what' },
      describe(c),
      num(e.undoes) !== null ? h('div', {}, h('small', {}, `undoes #${e.undoes}`)) : null,
      e.undone_by !== null ? h('div', {}, h('small', {}, `undone by #${e.undone_by}`)) : null,
    ),
    h('td', { class: 'why' }, e.why),
    undoCell,
  );
  if (e.undone_by === null) {
    undoCell.append(
      actionButton('Undo', { dataset: { undo: String(e.id) }, 'aria-label': `Undo entry ${e.id}` }, () =>
        toggleInline(undoCell, {
          id: 'undo',
          fields: [{ name: 'why', label: 'Reason', value: `undo #${e.id}` }],
          submit: 'Confirm undo',
          onSubmit: (v) => (v.why.trim() ? undo(e.id, v.why.trim()) : Promise.resolve(null)),
        }),
      ),
    );
  }
  return row;
}

// ---------------------------------------------------------------------------------------------
// The corrections form.

function showKind() {
  const kind = els.kind.value;
  for (const fs of els.correction.querySelectorAll('fieldset[data-kind]')) {
    const on = fs.dataset.kind === kind;
    fs.hidden = !on;
    fs.disabled = !on; // its required fields do not block another kind
  }
}

function fillWaves() {
  const race = page.races.get(els.gunRace.value);
  els.gunWave.replaceChildren(...(race ? race.waves : []).map((w) => h('option', { value: w.id }, w.id)));
}

function formCorrection() {
  const v = (id) => $(id).value.trim();
  switch (els.kind.value) {
    case 'status':
      return { kind: 'status', bib: v('c-status-bib'), status: v('c-status') || null };
    case 'manual_passing':
      return { kind: 'manual_passing', bib: v('c-passing-bib'), point: v('c-passing-point'), at: v('c-passing-at') || null };
    case 'gun_time':
      return { kind: 'gun_time', race: v('c-gun-race'), wave: v('c-gun-wave'), at: v('c-gun-at') || null };
    case 'assign_chip':
      return { kind: 'assign_chip', chip: v('c-chip'), bib: v('c-chip-bib') || null };
    case 'clock_offset':
      return { kind: 'clock_offset', point: v('c-offset-point'), offset_ms: Math.trunc(Number(v('c-offset'))) };
    default:
      return null;
  }
}

async function submitCorrection(e) {
  e.preventDefault();
  const correction = formCorrection();
  if (!correction) return;
  const button = $('c-submit');
  button.disabled = true;
  try {
    const entry = await correct(correction, els.why.value, els.who.value);
    if (entry) els.why.value = '';
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Exports: fetched with the token (a link cannot carry it) and saved from a Blob URL.

function fillCategories() {
  const race = page.races.get(els.xRace.value);
  const codes = race
    ? race.categories.map((c) => c.code)
    : [...new Set([...page.races.values()].flatMap((r) => r.categories.map((c) => c.code)))];
  const keep = els.xCategory.value;
  els.xCategory.replaceChildren(h('option', { value: '' }, 'All'), ...codes.map((c) => h('option', { value: c }, c)));
  if (codes.includes(keep)) els.xCategory.value = keep;
}

async function download(ext) {
  const params = new URLSearchParams();
  for (const [name, select] of [['race', els.xRace], ['gender', els.xGender], ['category', els.xCategory], ['precision', els.xPrecision]]) {
    if (select.value) params.set(name, select.value);
  }
  const url = `/api/v1/desk/export.${ext}?${params}`;
  showError(els.error, null);
  let blob;
  try {
    const response = await request(url, { token: page.token, accept: '*/*', timeoutMs: 60000 });
    try {
      blob = await response.blob();
    } finally {
      response.done();
    }
  } catch (e) {
    if (e.status === 401 || e.status === 403) signOut(refusal(e));
    else showError(els.error, new Error(`Export failed: ${e.message}`));
    return;
  }
  const name = ['standings', params.get('race'), params.get('gender'), params.get('category')].filter(Boolean).join('-') + `.${ext}`;
  const href = URL.createObjectURL(blob);
  const a = h('a', { href, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60000);
  notice(`Saved ${name} (${formatNumber(Math.max(1, Math.round(blob.size / 1024)))} KiB).`);
  document.body.dataset.lastExport = name;
  document.body.dataset.lastExportBytes = String(blob.size);
}

// ---------------------------------------------------------------------------------------------
// Refreshing.

async function refresh() {
  if (!page.token) return;
  let review;
  let guns;
  let audit;
  try {
    [review, guns, audit] = await Promise.all([
      desk('/api/v1/desk/review'),
      desk('/api/v1/desk/guns'),
      desk('/api/v1/desk/audit'),
    ]);
  } catch (e) {
    if (page.token) showError(els.error, new Error(`Cannot update: ${e.message}. What is shown is from the last answer.`));
    renderUpdated();
    return;
  }
  page.lastOkAt = performance.now();
  renderReview(Array.isArray(review) ? review.filter((i) => i && typeof i.kind === 'string') : []);
  renderGuns(Array.isArray(guns) ? guns.filter((w) => w && typeof w.race === 'string') : []);
  renderAudit(Array.isArray(audit) ? audit.filter((e) => e && num(e.id) !== null) : []);
  renderUpdated();
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
}

function renderUpdated() {
  if (!page.token) {
    els.updated.textContent = '';
  } else if (page.lastOkAt === null) {
    els.updated.textContent = 'Loading…';
  } else {
    const s = Math.floor((performance.now() - page.lastOkAt) / 1000);
    els.updated.textContent = s < 1 ? 'Updated just now' : `Updated ${s} s ago`;
  }
}

// ---------------------------------------------------------------------------------------------
// Start.

async function main() {
  const { zone, fromEvent } = await loadEventZone();
  page.zone = zone;
  els.zoneNote.textContent = `Times are in ${zone} (${fromEvent ? "the event's zone" : "this device's zone"}).`;
  try {
    page.event = await getJSON('/api/v1/event');
  } catch (e) {
    showError(els.error, new Error(`Cannot load the event: ${e.message}. Reload to try again.`));
    return;
  }
  for (const r of page.event.races || []) {
    r.categories = Array.isArray(r.categories) ? r.categories : [];
    r.waves = Array.isArray(r.waves) ? r.waves : [];
    page.races.set(r.id, r);
  }
  page.points = (page.event.points || []).map((p) => ({ id: p.id, name: p.name }));
  const pointOptions = () => page.points.map((p) => h('option', { value: p.id }, p.name));
  els.passingPoint.replaceChildren(...pointOptions());
  els.offsetPoint.replaceChildren(...pointOptions());
  const raceOptions = () => [...page.races.values()].map((r) => h('option', { value: r.id }, r.name));
  els.gunRace.replaceChildren(...raceOptions());
  els.xRace.append(...raceOptions());
  fillWaves();
  fillCategories();
  showKind();

  els.kind.addEventListener('change', showKind);
  els.gunRace.addEventListener('change', fillWaves);
  els.xRace.addEventListener('change', fillCategories);
  els.correction.addEventListener('submit', submitCorrection);
  els.exportForm.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-export]');
    if (button) download(button.dataset.export);
  });
  els.signin.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = els.token.value.trim();
    const who = els.signinWho.value.trim();
    if (!token || !who) return;
    signIn(token, who);
    notice('');
    await refresh();
    if (page.token) notice(`Signed in as ${who}.`);
  });
  els.signout.addEventListener('click', () => signOut(null));

  const token = tokenStore.get();
  const who = whoStore.get();
  if (typeof who === 'string') els.signinWho.value = who;
  if (typeof token === 'string' && token && typeof who === 'string' && who) signIn(token, who);
  setInterval(renderUpdated, 1000);
  poll(refresh, REFRESH_MS);
  document.body.dataset.ready = 'true';
}

main();
