/** A time-series chart (uPlot): x is seconds since the epoch, one line or bar set per series. */
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  color: string;
  values: Array<number | null>;
  /** Draw as bars (counts) instead of a line. */
  bars?: boolean;
  unit?: string;
}

export function TimeChart({
  title,
  times,
  series,
  height = 180,
}: {
  title: string;
  times: number[];
  series: Series[];
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => `${s.label}:${s.bars ? 1 : 0}`).join("|");

  // biome-ignore lint/correctness/useExhaustiveDependencies: rebuilt only when the series' shape changes; data updates go through setData below.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const bars = uPlot.paths.bars?.({ size: [0.7, 40] });
    const opts: uPlot.Options = {
      width: el.clientWidth || 300,
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.15)" } },
        {
          stroke: "currentColor",
          grid: { stroke: "rgba(128,128,128,0.15)" },
          size: 56,
          values: (_u, ticks) => ticks.map((v) => `${+v.toPrecision(3)}${series[0]?.unit ?? ""}`),
        },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.bars ? 0 : 2,
          fill: s.bars ? s.color : undefined,
          paths: s.bars ? bars : undefined,
          points: { show: false },
          spanGaps: !s.bars,
          value: (_u: uPlot, v: number | null) =>
            v === null || v === undefined ? "—" : `${+v.toPrecision(4)}${s.unit ?? ""}`,
        })),
      ],
    };
    plot.current = new uPlot(
      opts,
      [times, ...series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: el.clientWidth, height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, height]);

  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [times, series]);

  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
