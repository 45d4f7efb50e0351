// Prometheus rule files as YAML that reads like a hand-written one: keys in the order
// Prometheus documents them (record/alert, expr, for, labels, annotations), plain scalars
// where YAML reads them back as the same string, block scalars for multi-line strings, and
// an object's hidden `comment::` field as a comment above it. std.manifestYamlDoc (0.18)
// sorts keys and quotes every string, which would put expr before record and quote names.
local order = [
  'name',
  'interval',
  'rules',
  'record',
  'alert',
  'expr',
  'for',
  'keep_firing_for',
  'labels',
  'annotations',
  'summary',
  'description',
  'runbook_url',
];
local rank(k) = local i = std.find(k, order); if i == [] then std.length(order) else i[0];
local keys(o) = std.sort(std.objectFields(o), function(k) std.char(65 + rank(k)) + k);
local pad(n) = std.repeat(' ', n);
// Whether s contains the character c (std.member on a string takes ~0.1 s on jsonnet 0.18).
local has(s, c) = std.length(std.split(s, c)) > 1;

local chars(s) = std.stringChars(s);
// Character classes as objects: std.setMember is far slower than a field lookup on 0.18.
local charSet(s) = { [c]: true for c in chars(s) };
local letters = charSet('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ');
local digits = charSet('0123456789');
local units = charSet('smhdwy');
local plainChars = charSet('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:#-');
local reserved = ['true', 'false', 'yes', 'no', 'on', 'off', 'null', 'y', 'n'];
// Read back as this string by any YAML 1.1 or 1.2 parser: a name-like word (no spaces,
// no ": ", not a boolean or null), or a Prometheus duration such as 5m.
local isDuration(s) =
  std.length(s) >= 2 && std.objectHas(units, s[std.length(s) - 1]) &&
  std.length([c for c in chars(s[0:std.length(s) - 1]) if !std.objectHas(digits, c)]) == 0;
local isPlain(s) =
  isDuration(s) ||
  (std.length(s) > 0 && std.objectHas(letters, s[0]) && s[std.length(s) - 1] != ':' && !has(s, ' ') &&
   std.length([c for c in chars(s) if !std.objectHas(plainChars, c)]) == 0 &&
   !std.member(reserved, std.asciiLower(s)));

// Otherwise single-quoted (no escapes but '' for '), which holds any printable text;
// double-quoted JSON escapes for control characters.
local isPrintable(s) = std.length([c for c in chars(s) if std.codepoint(c) < 32 || std.codepoint(c) == 127]) == 0;
local scalar(v) =
  if std.isString(v) then
    (if isPlain(v) then v
     else if isPrintable(v) then "'" + std.strReplace(v, "'", "''") + "'"
     else std.escapeStringJson(v))
  else if std.isBoolean(v) then (if v then 'true' else 'false')
  else if v == null then 'null'
  else if std.isNumber(v) then std.toString(v)
  else if std.isArray(v) && v == [] then '[]'
  else if std.isObject(v) && std.length(std.objectFields(v)) == 0 then '{}'
  else error 'yaml: no scalar form for ' + std.type(v);

// A multi-line string as a literal block (| keeps one final newline, |- none); strings a
// block cannot hold unchanged (leading space, tab, CR, several final newlines) are quoted.
local isBlock(s) =
  std.isString(s) && has(s, '\n') && s[0] != ' ' && !has(s, '\t') && !has(s, '\r') &&
  !std.endsWith(s, '\n\n');
local block(s, ind) =
  local body = if std.endsWith(s, '\n') then s[0:std.length(s) - 1] else s;
  [if l == '' then '' else pad(ind) + l for l in std.split(body, '\n')];

// A long one-line string (prose, not an expression) as a folded block (>-) of lines up to
// 92 columns, broken at single spaces (not inside a {{ template }}): YAML joins them back
// with one space each.
local width = 92;
local canFold(k, s, ind) =
  k != 'expr' && std.isString(s) && ind + std.length(k) + 2 + std.length(s) > width &&
  isPrintable(s) && std.length([w for w in std.split(s, ' ') if w == '']) == 0 && has(s, ' ');
local folded(s, ind) =
  local add(lines, w) =
    if lines == [] then [w]
    else if ind + std.length(lines[std.length(lines) - 1]) + 1 + std.length(w) <= width
    then lines[0:std.length(lines) - 1] + [lines[std.length(lines) - 1] + ' ' + w]
    else lines + [w];
  local open(w) = std.length(std.split(w, '{')) > std.length(std.split(w, '}'));
  local words = std.foldl(function(ws, w)
    if ws != [] && open(ws[std.length(ws) - 1]) then ws[0:std.length(ws) - 1] + [ws[std.length(ws) - 1] + ' ' + w]
    else ws + [w], std.split(s, ' '), []);
  [pad(ind) + l for l in std.foldl(add, words, [])];

local commentOf(o, ind) =
  if std.isObject(o) && std.objectHasAll(o, 'comment') && !std.objectHas(o, 'comment') then
    [pad(ind) + (if l == '' then '#' else '# ' + l) for l in std.split(std.rstripChars(o.comment, '\n'), '\n')]
  else [];

local nested(v) = (std.isObject(v) && std.length(std.objectFields(v)) > 0) || (std.isArray(v) && v != []);

// The lines of value v, a block collection at indentation ind.
local lines(v, ind) =
  if std.isObject(v) then std.flattenArrays([
    local x = v[k];
    if nested(x) then [pad(ind) + scalar(k) + ':'] + lines(x, ind + 2)
    else if canFold(k, x, ind) then [pad(ind) + scalar(k) + ': >-'] + folded(x, ind + 2)
    else if isBlock(x) then [pad(ind) + scalar(k) + ': |' + (if std.endsWith(x, '\n') then '' else '-')] + block(x, ind + 2)
    else [pad(ind) + scalar(k) + ': ' + scalar(x)]
    for k in keys(v)
  ])
  else std.flattenArrays([
    local x = v[i];
    local c = commentOf(x, ind);
    (if i > 0 && (c != [] || ind == 2) then [''] else []) + c +
    (if std.isObject(x) && nested(x) then
       local l = lines(x, ind + 2);
       [pad(ind) + '- ' + l[0][ind + 2:]] + l[1:]
     else if std.isArray(x) && x != [] then error 'yaml: array in array'
     else [pad(ind) + '- ' + scalar(x)])
    for i in std.range(0, std.length(v) - 1)
  ]);

{
  // A document: header (comment text, may be empty) and an object.
  manifest(header, doc)::
    local top = [if l == '' then '#' else '# ' + l for l in std.split(std.rstripChars(header, '\n'), '\n') if header != ''];
    local doc_ = commentOf(doc, 0);
    std.join('\n', top + (if top != [] && doc_ != [] then ['#'] else []) + doc_ + lines(doc, 0)) + '\n',
}
