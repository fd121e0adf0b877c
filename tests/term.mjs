// term.mjs WIDTH FILE: replay what a program wrote to a terminal of
// WIDTH columns (carriage returns, line feeds, erase to end of line
// "ESC [ K"; any other escape is an error) and print the screen's lines.
// A line that reaches the last column is reported: it would wrap.
import { readFileSync } from 'node:fs';
const width = Number(process.argv[2]);
const text = readFileSync(process.argv[3], 'latin1');
const lines = [];
let line = [], col = 0, wrapped = 0;
for (let i = 0; i < text.length; i++) {
  const c = text[i];
  if (c === '\r') { col = 0; continue; }
  if (c === '\n') { lines.push(line.join('')); line = []; col = 0; continue; }
  if (c === '\x1b') {
    if (text.slice(i, i + 3) !== '\x1b[K') {
      console.error('term: an escape other than ESC[K at ' + i);
      process.exit(2);
    }
    line.length = col;
    i += 2;
    continue;
  }
  if (col >= width - 1) wrapped++;
  line[col++] = c;
}
if (line.length) lines.push(line.join(''));
for (const l of lines) console.log(l);
if (wrapped) { console.error(`term: ${wrapped} characters at or past column ${width}`); process.exit(3); }
