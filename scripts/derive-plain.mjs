#!/usr/bin/env node
// Derives the plain-function form of kernel paths (DESIGN.md, "Execution model"): for each source
// file listed below, writes NAME.plain.ts next to it, in which
//   - every generator function `function* f(...): KGen<T>` becomes `function f$(...): T`,
//   - every generator method `*m(...)` of a class C becomes `function C$m(self: C, ...)`,
//   - `yield* g(...)` becomes a direct call of g's plain form when g is a generator of a listed
//     file, and `inlineDrive(g(...))` otherwise (a driver callback, a path not derived); for
//     `yield* obj.m(...)` whose object type has an optional member `m$` (a driver's ioctl that
//     has a plain form), a call of `obj.m$(...)` when the object has one,
//   - `yield P` becomes `inlineYield(P)`, which accounts for the step or, for a wait, lets the
//     other threads run until this one is chosen again (src/sched/plain.ts).
// Everything else is imported from the source file (exported names) or copied (module-private
// helpers). The output is generated: never edit it; run `node scripts/derive-plain.mjs` after
// changing a listed file. `--check` fails if a derived file is missing or out of date.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Source files whose generator functions get a plain form, lowest layer first. */
export const DERIVED = [
  'src/sched/locks.ts',
  'src/kernel/mm/mmap_lock.ts',
  'src/kernel/mm/vmscan.ts',
  'src/kernel/mm/mmu_notifier_types.ts',
  'src/kernel/mm/mmu_notifier_interval.ts',
  'src/kernel/mm/mmu_notifier.ts',
  'src/kernel/mm/memory.ts',
  'src/kernel/mm/mmap.ts',
  'src/kernel/exit.ts',
  'src/kernel/mm/migrate_device.ts',
  'src/kernel/mm/hmm.ts',
  'src/kernel/syscalls.ts',
  'src/kernel/drivers/sdk/device_ioctl.ts',
  'src/kernel/drivers/sdk/devmem.ts',
  'src/kernel/drivers/test_hmm.ts',
  'src/kernel/drivers/test_hmm_devmem.ts',
  'src/kernel/drivers/sdk/hmm_mirror.ts',
  'src/kernel/drivers/gpu/uvm_hmm.ts',
  'src/kernel/drivers/gpu/uvm_gpu_replayable_faults.ts',
];

const RUNTIME = 'src/sched/plain.ts';

function plainPath(file) {
  return file.replace(/\.ts$/, '.plain.ts');
}

function relSpec(fromFile, toFile) {
  let r = relative(dirname(fromFile), toFile).split('\\').join('/');
  if (!r.startsWith('.')) r = `./${r}`;
  return r;
}

function isGeneratorDecl(node) {
  return (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.asteriskToken !== undefined;
}

function fail(sf, node, msg) {
  const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  throw new Error(`${relative(root, sf.fileName)}:${line + 1}:${character + 1}: ${msg}`);
}

export function derive() {
  const files = DERIVED.map((f) => join(root, f));
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const fileSet = new Set(files);

  // Every generator declaration of a listed file, with the name of its plain form.
  const plainName = new Map();
  for (const f of files) {
    const sf = program.getSourceFile(f);
    for (const st of sf.statements) {
      if (ts.isFunctionDeclaration(st) && isGeneratorDecl(st) && st.name)
        plainName.set(st, `${st.name.text}$`);
      if (ts.isClassDeclaration(st) && st.name) {
        for (const m of st.members) {
          if (isGeneratorDecl(m) && ts.isIdentifier(m.name))
            plainName.set(m, `${st.name.text}$${m.name.text}`);
        }
      }
    }
  }

  const out = new Map();
  for (const f of files) out.set(plainPath(f), deriveFile(program, checker, fileSet, plainName, f));
  return out;
}

function deriveFile(program, checker, fileSet, plainName, file) {
  const sf = program.getSourceFile(file);
  const text = sf.getFullText();
  /** Plain names this file needs from other derived files: name -> source file. */
  const needPlain = new Map();
  const localPlain = new Set([...plainName].filter(([d]) => d.getSourceFile() === sf).map(([, n]) => n));
  let usesDrive = false;
  let usesYield = false;

  function declOfCall(call) {
    const sig = checker.getResolvedSignature(call);
    const d = sig?.declaration;
    return d !== undefined && plainName.has(d) ? d : undefined;
  }

  /** The text of `node` with every child transformed; `self` replaces `this` when inMethod. */
  function emit(node, inMethod) {
    if (node.kind === ts.SyntaxKind.ThisKeyword && inMethod) return 'self';
    if (ts.isYieldExpression(node)) return emitYield(node, inMethod);
    // A nested function keeps its own yields (a generator it creates runs as its own thread).
    if (ts.isFunctionExpression(node) || ts.isFunctionDeclaration(node) || ts.isClassLike(node))
      return node.getText(sf);
    return splice(node, inMethod);
  }

  function splice(node, inMethod) {
    const start = node.getStart(sf);
    let s = '';
    let pos = start;
    node.forEachChild((child) => {
      const cs = child.getStart(sf);
      if (cs < pos) return;
      const ct = emit(child, inMethod);
      s += text.slice(pos, cs) + ct;
      pos = child.end;
    });
    return s + text.slice(pos, node.end);
  }

  function emitYield(node, inMethod) {
    const e = node.expression;
    if (node.asteriskToken === undefined) {
      usesYield = true;
      return `inlineYield(${e === undefined ? 'undefined' : emit(e, inMethod)})`;
    }
    // `yield* []`: a generator with no scheduling point of its own.
    if (ts.isArrayLiteralExpression(e) && e.elements.length === 0) return 'undefined';
    if (ts.isCallExpression(e)) {
      const d = declOfCall(e);
      if (d !== undefined) {
        let name = plainName.get(d);
        const dfile = d.getSourceFile().fileName;
        if (dfile !== file) {
          // Imported under another name where this file has a plain form of the same name.
          const local = name;
          if (localPlain.has(name)) name = `${basename(dfile, '.ts')}_${name}`;
          needPlain.set(name, { file: dfile, name: local });
        }
        const args = e.arguments.map((a) => emit(a, inMethod));
        if (ts.isMethodDeclaration(d)) {
          if (!ts.isPropertyAccessExpression(e.expression))
            fail(sf, e, 'generator method called without a receiver');
          const recv = emit(e.expression.expression, inMethod);
          return `${name}(${[recv, ...args].join(', ')})`;
        }
        return `${name}(${args.join(', ')})`;
      }
    }
    usesDrive = true;
    const alt = plainMember(e);
    if (alt !== undefined) {
      // An object that may carry the plain form of the method next to it (a driver's ioctl).
      const recv = emit(e.expression.expression, inMethod);
      const args = e.arguments.map((a) => emit(a, inMethod)).join(', ');
      const m = `${recv}.${alt}`;
      return `(${m} !== undefined ? ${m}(${args}) : inlineDrive(${emit(e, inMethod)}))`;
    }
    return `inlineDrive(${emit(e, inMethod)})`;
  }

  /**
   * For `yield* R.m(...)` where R is a chain of names and R's type has an optional member `m$`
   * (the plain form of m, when the object has one): that member's name.
   */
  function plainMember(call) {
    if (!ts.isCallExpression(call) || !ts.isPropertyAccessExpression(call.expression)) return undefined;
    const recv = call.expression.expression;
    const isChain = (n) =>
      ts.isIdentifier(n) ||
      n.kind === ts.SyntaxKind.ThisKeyword ||
      (ts.isPropertyAccessExpression(n) && isChain(n.expression));
    if (!isChain(recv)) return undefined;
    const name = `${call.expression.name.text}$`;
    const type = checker.getNonNullableType(checker.getTypeAtLocation(recv));
    return checker.getPropertyOfType(type, name) !== undefined ? name : undefined;
  }

  function returnType(fn) {
    if (fn.type === undefined) return '';
    const t = fn.type;
    if (ts.isTypeReferenceNode(t) && t.typeName.getText(sf) === 'KGen') {
      return `: ${t.typeArguments?.length ? t.typeArguments[0].getText(sf) : 'void'}`;
    }
    fail(sf, t, 'a derived generator must return KGen<T>');
  }

  function params(fn, inMethod) {
    return fn.parameters.map((p) => emit(p, inMethod)).join(', ');
  }

  function doc(node) {
    const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
    return ranges.map((r) => text.slice(r.pos, r.end)).join('\n');
  }

  const body = [];
  const privateVars = new Map();
  const exportedHere = new Map(); // name -> is type only
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) continue;
    const exported = st.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) === true;
    if (ts.isFunctionDeclaration(st) && isGeneratorDecl(st)) {
      const d = doc(st);
      const tp = st.typeParameters ? `<${st.typeParameters.map((p) => p.getText(sf)).join(', ')}>` : '';
      body.push({
        text: `${d ? `${d}\n` : ''}export function ${plainName.get(st)}${tp}(${params(st, false)})${returnType(st)} ${emit(st.body, false)}`,
      });
      if (exported) exportedHere.set(st.name.text, false);
      continue;
    }
    if (ts.isClassDeclaration(st)) {
      if (!exported) fail(sf, st, 'a class of a derived file must be exported');
      exportedHere.set(st.name.text, false);
      for (const m of st.members) {
        if (!isGeneratorDecl(m)) continue;
        const d = doc(m);
        const ps = params(m, true);
        body.push({
          text: `${d ? `${d}\n` : ''}export function ${plainName.get(m)}(self: ${st.name.text}${ps ? `, ${ps}` : ''})${returnType(m)} ${emit(m.body, true)}`,
        });
      }
      continue;
    }
    const names = declaredNames(st);
    if (exported) {
      const typeOnly = ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st);
      for (const n of names) exportedHere.set(n, typeOnly);
      continue;
    }
    if (ts.isExpressionStatement(st)) fail(sf, st, 'unsupported statement in a derived file');
    // Module-private variables are never copied (their state would exist twice); module-private
    // functions and types are: the derived file cannot import them.
    if (ts.isVariableStatement(st)) {
      // A numeric constant holds no state: it is copied like a function.
      if (isNumericConst(st)) {
        body.push({ text: st.getText(sf), names });
        continue;
      }
      for (const n of names) privateVars.set(n, st);
      continue;
    }
    body.push({ text: st.getText(sf), names });
  }

  // Module-private declarations are copied only when what is derived uses them (directly or
  // through another copied one): the rest stays with the generator source alone.
  const idents = (t) => t.match(/[A-Za-z_$][\w$]*/g) ?? [];
  const keep = new Set();
  const usedNames = new Set();
  const addUses = (entry) => {
    for (const n of idents(entry.text)) usedNames.add(n);
  };
  for (const e of body) {
    if (e.names !== undefined) continue;
    keep.add(e);
    addUses(e);
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const e of body) {
      if (keep.has(e) || !e.names.some((n) => usedNames.has(n))) continue;
      keep.add(e);
      addUses(e);
      grew = true;
    }
  }
  const bodyText = body
    .filter((e) => keep.has(e))
    .map((e) => e.text)
    .join('\n\n');
  const used = new Set(idents(bodyText));
  for (const [n, st] of privateVars) {
    if (used.has(n)) fail(sf, st, `export ${n}: the plain form of a path uses it`);
  }
  const imports = [];
  const outFile = plainPath(file);
  // A name the source imports itself (a plain form it calls directly, a runtime helper) is not
  // imported a second time for the derived code.
  const imported = new Set();
  const localName = (el) =>
    el
      .replace(/^type\s+/, '')
      .split(/\s+as\s+/)
      .pop();
  const addImport = (names, spec, typeOnly) => {
    const fresh = names.filter((n) => !imported.has(localName(n)));
    if (fresh.length === 0) return;
    for (const n of fresh) imported.add(localName(n));
    imports.push(`import ${typeOnly ? 'type ' : ''}{ ${fresh.join(', ')} } from '${spec}';`);
  };
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st)) continue;
    const spec = st.moduleSpecifier.text;
    const target = resolve(dirname(file), spec);
    const clause = st.importClause;
    if (clause === undefined) continue;
    // The source may import its own plain form (to hand it to a table of ops): not the output.
    if (target === plainPath(file)) continue;
    const newSpec = relSpec(outFile, target);
    if (clause.namedBindings && ts.isNamespaceImport(clause.namedBindings)) {
      const n = clause.namedBindings.name.text;
      if (used.has(n)) imports.push(`import ${clause.isTypeOnly ? 'type ' : ''}* as ${n} from '${newSpec}';`);
      continue;
    }
    const keep = [];
    for (const el of clause.namedBindings?.elements ?? []) {
      if (!used.has(el.name.text)) continue;
      keep.push(el.getText(sf));
    }
    addImport(keep, newSpec, clause.isTypeOnly);
  }
  const selfSpec = relSpec(outFile, file);
  const selfValues = [...exportedHere].filter(([n, t]) => !t && used.has(n)).map(([n]) => n);
  const selfTypes = [...exportedHere].filter(([n, t]) => t && used.has(n)).map(([n]) => n);
  addImport(selfValues, selfSpec, false);
  addImport(selfTypes, selfSpec, true);
  const byFile = new Map();
  for (const [alias, { file: f, name }] of needPlain)
    byFile.set(f, [...(byFile.get(f) ?? []), alias === name ? name : `${name} as ${alias}`]);
  for (const [f, names] of byFile) addImport(names.sort(), relSpec(outFile, plainPath(f)), false);
  const rt = [usesDrive ? 'inlineDrive' : null, usesYield ? 'inlineYield' : null].filter((x) => x !== null);
  addImport(rt, relSpec(outFile, join(root, RUNTIME)), false);

  return [
    `// Generated by scripts/derive-plain.mjs from ${relative(dirname(outFile), file)}: do not edit.`,
    '// The plain-function form of its kernel paths, for runs in which no other thread can be scheduled.',
    ...imports,
    '',
    bodyText,
    '',
  ].join('\n');
}

/**
 * `const X = <integer arithmetic on literals and UPPER_CASE constants>;`, the constants possibly
 * members of an UPPER_CASE table (`VM.SHARED`).
 */
function isNumericConst(st) {
  const list = st.declarationList;
  if ((list.flags & ts.NodeFlags.Const) === 0) return false;
  return list.declarations.every((d) => {
    const init = d.initializer;
    return init !== undefined && /^[\dA-Z\s()+\-*/%<>&|^~_xa-f.]+$/.test(init.getText());
  });
}

function declaredNames(st) {
  if (ts.isVariableStatement(st))
    return st.declarationList.declarations.flatMap((d) => (ts.isIdentifier(d.name) ? [d.name.text] : []));
  if (st.name !== undefined && ts.isIdentifier(st.name)) return [st.name.text];
  return [];
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [path, content] of derive()) {
    const rel = relative(root, path);
    const cur = existsSync(path) ? readFileSync(path, 'utf8') : null;
    if (cur === content) continue;
    if (check) {
      console.error(`${rel} is out of date: run node scripts/derive-plain.mjs`);
      stale++;
    } else {
      writeFileSync(path, content);
      console.log(`wrote ${rel}`);
    }
  }
  if (stale > 0) process.exit(1);
}
