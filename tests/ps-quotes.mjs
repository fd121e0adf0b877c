// A PowerShell tokenizer for the one thing the tree-sitter grammar gets
// wrong: quoting.  PowerShell ends a single-quoted string on ' and on
// U+2018-U+201B alike (a doubled one is one literal character), and a
// double-quoted one on " and U+201C-U+201E (backtick escapes; $( ... )
// holds code, strings included); here-strings, line comments and block
// comments are followed too.
//
//   node ps-quotes.mjs skeleton FILE   the code with every single-quoted
//                                      literal replaced by '?' and every
//                                      comment by #? or <#?#>
//   node ps-quotes.mjs literals FILE   each single-quoted literal's value,
//                                      one JSON string per line
// Whatever the data in the literals, a script's skeleton must not change:
// that is the test of an injection.
import { readFileSync } from 'fs';

const SQ = new Set(["'", '\u2018', '\u2019', '\u201a', '\u201b']);
const DQ = new Set(['"', '\u201c', '\u201d', '\u201e']);

function tokenize(text) {
  let i = 0;
  let out = '';
  const literals = [];

  function single() {            // at the opening quote
    i++;
    let v = '';
    for (;;) {
      if (i >= text.length) throw new Error('unterminated single-quoted string');
      const c = text[i];
      if (SQ.has(c)) {
        if (SQ.has(text[i + 1])) { v += c; i += 2; continue; }
        i++;
        literals.push(v);
        out += "'?'";
        return;
      }
      v += c;
      i++;
    }
  }
  function double() {            // at the opening quote; kept verbatim
    out += text[i++];
    for (;;) {
      if (i >= text.length) throw new Error('unterminated double-quoted string');
      const c = text[i];
      if (c === '`') { out += c + (text[i + 1] ?? ''); i += 2; continue; }
      if (DQ.has(c)) {
        if (DQ.has(text[i + 1])) { out += c + text[i + 1]; i += 2; continue; }
        out += c; i++;
        return;
      }
      if (c === '$' && text[i + 1] === '(') { out += '$('; i += 2; code(')'); continue; }
      out += c; i++;
    }
  }
  function hereString(q) {      // at @' or @"
    const end = '\n' + q + '@';
    const j = text.indexOf(end, i + 2);
    if (j < 0) throw new Error('unterminated here-string');
    if (q === "'") {
      literals.push(text.slice(i + 3, j));
      out += "@'?'@";
    } else {
      out += text.slice(i, j + end.length);
    }
    i = j + end.length;
  }
  function code(close) {         // until the matching close, or the end
    let depth = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === '#' && text[i - 1] !== '`') {
        const j = text.indexOf('\n', i);
        const k = j < 0 ? text.length : j;
        out += '#?'; i = k;
        continue;
      }
      if (c === '<' && text[i + 1] === '#') {
        const j = text.indexOf('#>', i + 2);
        if (j < 0) throw new Error('unterminated block comment');
        out += '<#?#>'; i = j + 2;
        continue;
      }
      if (c === '@' && (SQ.has(text[i + 1]) || DQ.has(text[i + 1])) &&
          (text[i + 2] === '\n' || (text[i + 2] === '\r' && text[i + 3] === '\n'))) {
        hereString(SQ.has(text[i + 1]) ? "'" : '"');
        continue;
      }
      if (c === '`') { out += c + (text[i + 1] ?? ''); i += 2; continue; }
      if (SQ.has(c)) { single(); continue; }
      if (DQ.has(c)) { double(); continue; }
      if (close && (c === '(' || c === '{' || c === '[')) depth++;
      if (close && (c === ')' || c === '}' || c === ']')) {
        if (depth === 0 && c === close) { out += c; i++; return; }
        depth--;
      }
      out += c; i++;
    }
    if (close) throw new Error('unterminated subexpression');
  }
  code(null);
  return { skeleton: out, literals };
}

const [mode, file] = process.argv.slice(2);
let text = readFileSync(file, 'utf8');
if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
let t;
try {
  t = tokenize(text);
} catch (e) {
  console.error(`${file}: ${e.message}`);
  process.exit(1);
}
if (mode === 'skeleton') process.stdout.write(t.skeleton);
else for (const l of t.literals) console.log(JSON.stringify(l));
