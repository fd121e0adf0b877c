// Parse PowerShell files with the tree-sitter-powershell grammar; print
// each syntax error with its line and exit 1 if there is any.
import { Parser, Language } from 'web-tree-sitter';
import { readFileSync } from 'fs';
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const wasm = require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
await Parser.init();
const parser = new Parser();
parser.setLanguage(await Language.load(wasm));
let bad = 0;
function walk(file, n) {
  if (n.type === 'ERROR' || n.isMissing) {
    console.error(`${file}:${n.startPosition.row + 1}: syntax error near ` +
      JSON.stringify(n.text.slice(0, 60)));
    bad++;
    return;
  }
  for (const c of n.children) walk(file, c);
}
for (const file of process.argv.slice(2)) {
  let text = readFileSync(file, 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const tree = parser.parse(text);
  walk(file, tree.rootNode);
  if (tree.rootNode.hasError && bad === 0) {
    console.error(`${file}: syntax error`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
