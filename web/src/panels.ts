/**
 * Extra panels. The views of a snapshot are fixed (views.tsx); panels that show results from
 * elsewhere register here. Charts of `hetmem sim` results (the policy simulator) are meant to
 * come in this way: a panel that reads a sim result and draws it.
 */
import type { JSX } from 'preact';

export interface ExtraPanel {
  id: string;
  title: string;
  render(): JSX.Element | null;
}

export const extraPanels: ExtraPanel[] = [];
