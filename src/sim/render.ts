/**
 * Renders a chart of charts.ts to SVG text with Vega (headless: no canvas, no DOM), the same
 * renderer the studio uses in the browser. Vega-Lite compiles the specification to Vega first.
 */
import { Error as VEGA_ERROR, View, parse, type LoggerInterface } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Thrown when Vega-Lite or Vega warns: a chart of ours that warns is a bug. */
export class ChartError extends Error {}

/** Compiles a Vega-Lite chart to a Vega specification; warnings are errors. */
export function toVega(spec: TopLevelSpec): ReturnType<typeof compile>['spec'] {
  const warnings: string[] = [];
  const note = (...args: readonly unknown[]): void => {
    warnings.push(args.map(String).join(' '));
  };
  const logger: LoggerInterface = {
    level: () => logger,
    error: (...a: readonly unknown[]) => (note(...a), logger),
    warn: (...a: readonly unknown[]) => (note(...a), logger),
    info: () => logger,
    debug: () => logger,
  };
  const out = compile(spec, { logger }).spec;
  if (warnings.length > 0) throw new ChartError(`vega-lite: ${warnings.join('; ')}`);
  return out;
}

/** The chart as a standalone SVG document. */
export async function chartSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(toVega(spec)), { renderer: 'none', logLevel: VEGA_ERROR });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
