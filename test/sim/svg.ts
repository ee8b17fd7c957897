/** Reads an SVG that Vega wrote: checks it is well-formed XML and indexes its groups by class. */
import assert from 'node:assert/strict';
import { SaxesParser } from 'saxes';

interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

export interface SvgGroup {
  /** The group's class attribute, e.g. 'mark-line role-mark concat_0_marks'. */
  cls: string;
  /** The text of every <text> inside, in document order. */
  texts: string[];
  /** How many <path> elements it holds (a line, a symbol or a bar each draw one). */
  paths: number;
}

export interface Svg {
  root: { width: number; height: number };
  groups: SvgGroup[];
}

function texts(n: XmlNode): string[] {
  if (n.tag === 'text') return [n.text];
  return n.children.flatMap(texts);
}

function count(n: XmlNode, tag: string): number {
  return (n.tag === tag ? 1 : 0) + n.children.reduce((a, c) => a + count(c, tag), 0);
}

/** Parses `text` with a strict XML parser; fails the test unless it is well-formed with an <svg> root. */
export function readSvg(text: string): Svg {
  const parser = new SaxesParser({ xmlns: true });
  const top: XmlNode = { tag: '#document', attrs: {}, children: [], text: '' };
  const stack = [top];
  parser.on('opentag', (t) => {
    const attrs: Record<string, string> = {};
    for (const [k, a] of Object.entries(t.attributes)) attrs[k] = a.value;
    const n: XmlNode = { tag: t.local, attrs, children: [], text: '' };
    stack[stack.length - 1].children.push(n);
    stack.push(n);
  });
  parser.on('text', (t) => {
    stack[stack.length - 1].text += t;
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  parser.write(text).close();
  assert.equal(stack.length, 1, 'every element is closed');
  assert.equal(top.children.length, 1, 'one root element');
  const svg = top.children[0];
  assert.equal(svg.tag, 'svg');
  assert.equal(svg.attrs.xmlns, 'http://www.w3.org/2000/svg');
  const groups: SvgGroup[] = [];
  const walk = (n: XmlNode): void => {
    if (n.tag === 'g' && typeof n.attrs.class === 'string')
      groups.push({ cls: n.attrs.class, texts: texts(n), paths: count(n, 'path') });
    n.children.forEach(walk);
  };
  walk(svg);
  return { root: { width: Number(svg.attrs.width), height: Number(svg.attrs.height) }, groups };
}

/** Groups whose class list has every one of `classes`. */
export function groupsOf(svg: Svg, ...classes: string[]): SvgGroup[] {
  return svg.groups.filter((g) => classes.every((c) => g.cls.split(' ').includes(c)));
}

/** The texts of every group with these classes (axis titles, legend labels, ...). */
export function textsOf(svg: Svg, ...classes: string[]): string[] {
  return groupsOf(svg, ...classes).flatMap((g) => g.texts);
}
