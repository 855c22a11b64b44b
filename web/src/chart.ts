// The live training chart: loss (left axis) and accuracy (right axis, 0-1) per batch, against
// epochs, drawn with uPlot.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export class TrainingChart {
  private plot: uPlot | null = null;
  private x: number[] = [];
  private loss: number[] = [];
  private accuracy: number[] = [];
  private frame = 0;
  private resizeObserver: ResizeObserver;

  constructor(private container: HTMLElement) {
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
  }

  private width(): number {
    return Math.max(240, Math.floor(this.container.clientWidth || 480));
  }

  private create(): uPlot {
    const opts: uPlot.Options = {
      width: this.width(),
      height: 220,
      title: 'Training loss and accuracy',
      scales: {
        x: { time: false },
        loss: { auto: true, range: (_u, _min, max) => [0, Math.max(max, 0.1)] },
        acc: { auto: false, range: [0, 1] },
      },
      axes: [
        { label: 'epoch', values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) },
        { scale: 'loss', label: 'loss' },
        { scale: 'acc', label: 'accuracy', side: 1, grid: { show: false } },
      ],
      series: [
        { label: 'epoch', value: (_u, v) => (v == null ? '–' : v.toFixed(2)) },
        { label: 'loss', scale: 'loss', stroke: '#c0392b', width: 2, value: (_u, v) => (v == null ? '–' : v.toFixed(4)) },
        { label: 'accuracy', scale: 'acc', stroke: '#2471a3', width: 2, value: (_u, v) => (v == null ? '–' : v.toFixed(3)) },
      ],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
    };
    return new uPlot(opts, [[], [], []], this.container);
  }

  reset(): void {
    this.x = [];
    this.loss = [];
    this.accuracy = [];
    if (!this.plot) this.plot = this.create();
    this.plot.setData([[], [], []]);
  }

  /** Adds a point at `epochs` (fractional: 2.5 is half-way through the third epoch). */
  add(epochs: number, loss: number, accuracy: number): void {
    this.x.push(epochs);
    this.loss.push(loss);
    this.accuracy.push(accuracy);
    // Redraw at most once per frame however fast batches arrive.
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        if (!this.plot) this.plot = this.create();
        this.plot.setData([this.x, this.loss, this.accuracy]);
      });
    }
  }

  get points(): number {
    return this.x.length;
  }

  /** The points drawn, as kept with the training. */
  get series(): { x: number[]; loss: number[]; accuracy: number[] } {
    return { x: [...this.x], loss: [...this.loss], accuracy: [...this.accuracy] };
  }

  /** Draws the points of an earlier training. */
  show(series: { x: number[]; loss: number[]; accuracy: number[] }): void {
    this.reset();
    series.x.forEach((x, i) => this.add(x, series.loss[i], series.accuracy[i]));
  }

  private resize(): void {
    this.plot?.setSize({ width: this.width(), height: 220 });
  }
}
