// Small SVG pictures for the spectator page: a runner's place along the course, their pace per
// segment, a race's finish-time histogram and its finishers per minute. Each is an `svg` with
// `role="img"`, a `<title>` and an `aria-label` saying what it shows in words and numbers; the
// page prints the key numbers as text beside it too. Sizes are in viewBox units: the SVG scales
// to its box (app.css), so one drawing serves a phone and a laptop. Colours come from CSS.

import { formatDuration, formatInstant, formatKm, formatNumber, num, svg } from './common.js';

function picture(className, width, height, label, ...children) {
  return svg(
    'svg',
    { class: ['chart', className], viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label },
    svg('title', {}, label),
    ...children,
  );
}

/** `H:MM` of a duration in seconds. */
function hm(seconds) {
  return formatDuration(seconds * 1000).replace(/:\d\d$/, '');
}

/**
 * The course as a line from start to finish, a mark and its distance at each split (passed ones
 * filled), and a dot where the runner is: `at_m` (measured or estimated). `splits`:
 * `[{ name, distance_m, passed }]`.
 */
export function courseProfile({ distance_m: total, splits, at_m, estimated, label }) {
  const width = 320;
  const height = 46;
  const left = 12;
  const right = width - 14;
  const y = 18;
  const x = (m) => left + ((right - left) * Math.min(Math.max(m, 0), total)) / Math.max(total, 1);
  const children = [
    svg('line', { class: 'course', x1: left, y1: y, x2: right, y2: y }),
  ];
  if (num(at_m) !== null && at_m > 0) {
    children.push(svg('line', { class: 'covered', x1: left, y1: y, x2: x(at_m), y2: y }));
  }
  for (const s of splits) {
    const sx = x(s.distance_m);
    children.push(svg('line', { class: ['mark', s.passed ? 'passed' : null], x1: sx, y1: y - 6, x2: sx, y2: y + 6 }));
  }
  // Distance labels: the start's and the finish's always, others where they do not collide
  // (the splits table has every distance). Widths are estimated from the text (10-unit type).
  const labels = splits.map((s, i) => {
    const text = formatKm(s.distance_m);
    const width = text.length * 5.6;
    const sx = x(s.distance_m);
    if (i === 0) return { text, from: sx - 4, to: sx - 4 + width, at: sx - 4, anchor: 'start' };
    if (i === splits.length - 1) return { text, from: sx + 4 - width, to: sx + 4, at: sx + 4, anchor: 'end' };
    return { text, from: sx - width / 2, to: sx + width / 2, at: sx, anchor: 'middle' };
  });
  const kept = labels.length ? [labels[0]] : [];
  const last = labels.length > 1 ? labels[labels.length - 1] : null;
  for (const l of labels.slice(1, -1)) {
    if (l.from >= kept[kept.length - 1].to + 4 && (!last || l.to + 4 <= last.from)) kept.push(l);
  }
  if (last) kept.push(last);
  for (const l of kept) {
    children.push(svg('text', { class: 'axis', x: l.at, y: y + 20, 'text-anchor': l.anchor }, l.text));
  }
  if (num(at_m) !== null) {
    children.push(
      svg('circle', { class: ['runner', estimated ? 'estimated' : null], cx: x(at_m), cy: y, r: 6, dataset: { atM: String(Math.round(at_m)) } }),
    );
  }
  return picture('profile', width, height, label, ...children);
}

/**
 * Bars of the runner's pace per segment (taller is slower), each labelled with its pace.
 * `segments`: `[{ from_m, to_m, pace_ms, text }]`.
 */
export function paceBars(segments, label) {
  const width = 320;
  const height = 96;
  const top = 16;
  const bottom = height - 18;
  const slowest = Math.max(...segments.map((s) => s.pace_ms), 1);
  const slot = width / Math.max(segments.length, 1);
  const barWidth = Math.min(56, slot * 0.7);
  const children = [svg('line', { class: 'base', x1: 0, y1: bottom, x2: width, y2: bottom })];
  segments.forEach((s, i) => {
    const h = Math.max(2, ((bottom - top) * s.pace_ms) / slowest);
    const cx = slot * i + slot / 2;
    children.push(
      svg('rect', { class: 'bar', x: cx - barWidth / 2, y: bottom - h, width: barWidth, height: h }),
      svg('text', { class: 'value', x: cx, y: bottom - h - 4, 'text-anchor': 'middle' }, s.text),
      svg(
        'text',
        { class: 'axis', x: cx, y: height - 4, 'text-anchor': 'middle' },
        `${formatNumber(s.from_m / 1000, s.from_m % 1000 ? 1 : 0)}–${formatKm(s.to_m)}`,
      ),
    );
  });
  return picture('pace', width, height, label, ...children);
}

/** Bars over time, with the largest value marked, for the histogram and the per-minute counts. */
function bars({ className, values, label, xLabels, maxLabel }) {
  const width = 320;
  const height = 120;
  const top = 14;
  const bottom = height - 18;
  const left = 4;
  const right = width - 4;
  const most = Math.max(...values, 1);
  // The largest bars stand out only when some bars are smaller.
  const markPeak = values.some((v) => v > 0 && v < most);
  const step = (right - left) / Math.max(values.length, 1);
  const children = [svg('line', { class: 'base', x1: left, y1: bottom, x2: right, y2: bottom })];
  values.forEach((v, i) => {
    if (!v) return;
    const h = Math.max(1, ((bottom - top) * v) / most);
    children.push(
      svg('rect', { class: ['bar', markPeak && v === most ? 'peak' : null], x: left + i * step + step * 0.08, y: bottom - h, width: Math.max(step * 0.84, 0.6), height: h }),
    );
  });
  children.push(svg('text', { class: 'value', x: left, y: top - 4 }, maxLabel));
  for (const [i, text, anchor] of xLabels) {
    children.push(svg('text', { class: 'axis', x: left + i * step, y: height - 4, 'text-anchor': anchor }, text));
  }
  return picture(className, width, height, label, ...children);
}

/** `{ svg, text }`: the finish-time histogram of `stats` (`/api/v1/stats/{race}`) and its key numbers. */
export function histogram(stats, raceName) {
  const values = Array.isArray(stats.histogram) ? stats.histogram.map((v) => num(v) ?? 0) : [];
  const bin = num(stats.bin_s) || 60;
  const first = num(stats.first_bin_s) || 0;
  const total = values.reduce((a, b) => a + b, 0);
  if (!total) {
    return { svg: null, text: `${raceName}: no finish times yet.` };
  }
  const most = Math.max(...values);
  const peak = values.indexOf(most);
  const binText = (i) => `${hm(first + i * bin)} and ${hm(first + (i + 1) * bin)}`;
  const text = `${formatNumber(total)} finish ${total === 1 ? 'time' : 'times'} from ${hm(first)} to ${hm(first + values.length * bin)} (chip time, in ${bin / 60}-minute bins); the most, ${formatNumber(most)}, between ${binText(peak)}.`;
  const xLabels = [
    [0, hm(first), 'start'],
    [values.length, hm(first + values.length * bin), 'end'],
  ];
  if (values.length >= 6) xLabels.push([values.length / 2, hm(first + (values.length / 2) * bin), 'middle']);
  const label = `Finish-time histogram of the ${raceName}: ${text}`;
  return { svg: bars({ className: 'histogram', values, label, xLabels, maxLabel: `${formatNumber(most)} max` }), text };
}

/** `{ svg, text }`: finishers per minute at the finish line, minutes shown in `zone`. */
export function perMinute(stats, raceName, zone) {
  const pairs = Array.isArray(stats.per_minute)
    ? stats.per_minute.filter((p) => Array.isArray(p) && num(p[0]) !== null && num(p[1]) !== null)
    : [];
  if (!pairs.length) {
    return { svg: null, text: `${raceName}: nobody has crossed the finish line yet.` };
  }
  const minute = 60e6;
  const from = pairs[0][0];
  const to = pairs[pairs.length - 1][0];
  const n = Math.round((to - from) / minute) + 1;
  // A very long night is drawn in 5-minute bars, so every bar stays visible on a phone.
  const group = n > 240 ? 5 : 1;
  const values = new Array(Math.ceil(n / group)).fill(0);
  let total = 0;
  let peak = pairs[0];
  for (const p of pairs) {
    values[Math.floor(Math.round((p[0] - from) / minute) / group)] += p[1];
    total += p[1];
    if (p[1] > peak[1]) peak = p;
  }
  const hhmm = (us) => formatInstant(us, zone).slice(0, 5);
  const last = pairs[pairs.length - 1];
  const text = `${formatNumber(total)} ${total === 1 ? 'finisher' : 'finishers'} from ${hhmm(from)} to ${hhmm(to + minute)}; at most ${formatNumber(peak[1])} in one minute, at ${hhmm(peak[0])}; ${formatNumber(last[1])} in the latest minute (${hhmm(last[0])}).`;
  const xLabels = [
    [0, hhmm(from), 'start'],
    [values.length, hhmm(to + minute), 'end'],
  ];
  const label = `Finishers per ${group === 1 ? 'minute' : `${group} minutes`} of the ${raceName}: ${text}`;
  return { svg: bars({ className: 'per-minute', values, label, xLabels, maxLabel: `${formatNumber(Math.max(...values))} max` }), text };
}
