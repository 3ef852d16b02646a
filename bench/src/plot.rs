//! `bench plot RESULTS.jsonl...`: the size sweep as an SVG, written by hand.
//!
//! Reads the `RESULT` lines that `compare.sh` keeps (each with its `case`
//! and `side`, `ours` or `etcd`), takes the `sweep_*` cases, and draws two
//! panels against entry size: delivered msg/s and MB/s (10^6 entry bytes per
//! second), ours and etcd's, each point the median of its runs with a bar
//! from the lowest to the highest. The MB/s panel also draws the loopback
//! TCP limit (`ref_tcp`) measured in the same run. Both axes are
//! logarithmic. The SVG goes to stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// Size of the whole picture and of one panel's plotting area, in px.
const WIDTH: f64 = 980.0;
const HEIGHT: f64 = 440.0;
const PANEL_W: f64 = 380.0;
const PANEL_H: f64 = 300.0;
/// Top-left corners of the two panels' plotting areas.
const PANELS: [(f64, f64); 2] = [(90.0, 80.0), (580.0, 80.0)];
/// The entry-size axis: 32 B to 2 MiB, as powers of two.
const X_RANGE: (f64, f64) = (5.0, 21.0);
const OURS: (&str, &str, &str) = ("ours", "#1f77b4", "");
const ETCD: (&str, &str, &str) = ("etcd 3.4.23", "#d62728", "6 4");

/// Entry point of the `plot` subcommand.
pub fn main(files: &[String]) {
    match render_files(files) {
        Ok(svg) => print!("{svg}"),
        Err(e) => {
            eprintln!("bench plot: {e}");
            std::process::exit(2)
        }
    }
}

fn render_files(files: &[String]) -> Result<String, String> {
    if files.is_empty() {
        return Err("usage: bench plot RESULTS.jsonl... > sweep.svg".into());
    }
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).map_err(|e| format!("{file}: {e}"))?;
            lines.push(v);
        }
    }
    let sweep = Sweep::from_results(&lines);
    if sweep.is_empty() {
        return Err("no sweep_* results with a side and an entry_bytes".into());
    }
    Ok(sweep.svg())
}

/// One point of a curve: the median of its runs and their range.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    size: f64,
    median: f64,
    min: f64,
    max: f64,
}

/// Runs of one figure by entry size, for one side.
type Runs = BTreeMap<u64, Vec<f64>>;

/// The sweep's figures, by side, and the loopback TCP limit.
#[derive(Debug, Default)]
struct Sweep {
    msgs: [Runs; 2],
    mb: [Runs; 2],
    tcp_mb: Vec<f64>,
}

impl Sweep {
    fn from_results(results: &[Value]) -> Self {
        let mut sweep = Sweep::default();
        for r in results {
            let case = r["case"].as_str().unwrap_or_default();
            if case == "ref_tcp" {
                sweep.tcp_mb.extend(r["mb_per_s"].as_f64());
                continue;
            }
            let side = match r["side"].as_str() {
                Some("ours") => 0,
                Some("etcd") => 1,
                _ => continue,
            };
            let (Some(size), true) = (r["entry_bytes"].as_u64(), case.starts_with("sweep_")) else {
                continue;
            };
            if let Some(v) = r["delivered_per_s"].as_f64() {
                sweep.msgs[side].entry(size).or_default().push(v);
            }
            if let Some(v) = r["mb_per_s"].as_f64() {
                sweep.mb[side].entry(size).or_default().push(v);
            }
        }
        sweep
    }

    fn is_empty(&self) -> bool {
        self.msgs.iter().all(BTreeMap::is_empty)
    }

    fn svg(&self) -> String {
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{x}" y="24" font-size="15" text-anchor="middle">W1 size sweep: one entry per MsgApp, medians with min–max bars</text>
"#,
            x = WIDTH / 2.0
        );
        legend(&mut svg);
        let msgs = self.msgs.each_ref().map(points);
        let mb = self.mb.each_ref().map(points);
        let tcp = median(&self.tcp_mb).map(|v| (v, "loopback TCP (ref_tcp)"));
        Panel::new(PANELS[0], "delivered msg/s", &msgs, None).draw(&mut svg);
        Panel::new(PANELS[1], "MB/s (10^6 entry bytes)", &mb, tcp).draw(&mut svg);
        svg.push_str("</svg>\n");
        svg
    }
}

fn points(runs: &Runs) -> Vec<Point> {
    let point = |(&size, vals): (&u64, &Vec<f64>)| {
        let median = median(vals)?;
        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let size = size as f64;
        Some(Point {
            size,
            median,
            min,
            max,
        })
    };
    runs.iter()
        .filter_map(point)
        .filter(|p| p.min > 0.0)
        .collect()
}

fn median(vals: &[f64]) -> Option<f64> {
    let mut sorted = vals.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn legend(svg: &mut String) {
    for (i, (label, color, dash)) in [OURS, ETCD].into_iter().enumerate() {
        let x = WIDTH / 2.0 - 150.0 + 180.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="46" x2="{x2}" y2="46" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{tx}" y="50">{label}</text>"#,
            x2 = x + 30.0,
            tx = x + 36.0
        );
    }
}

/// A logarithmic axis: `lo..hi` in log10 (or log2) units onto pixels.
#[derive(Debug, Clone, Copy)]
struct LogAxis {
    lo: f64,
    hi: f64,
    px0: f64,
    px1: f64,
}

impl LogAxis {
    fn px(&self, log: f64) -> f64 {
        self.px0 + (log - self.lo) / (self.hi - self.lo) * (self.px1 - self.px0)
    }
}

/// One panel: its axes, its two curves and an optional horizontal limit.
struct Panel<'a> {
    x: LogAxis,
    y: LogAxis,
    title: &'a str,
    curves: &'a [Vec<Point>; 2],
    limit: Option<(f64, &'a str)>,
}

impl<'a> Panel<'a> {
    fn new(
        (left, top): (f64, f64),
        title: &'a str,
        curves: &'a [Vec<Point>; 2],
        limit: Option<(f64, &'a str)>,
    ) -> Self {
        let values = curves.iter().flatten().flat_map(|p| [p.min, p.max]);
        let values = values.chain(limit.map(|(v, _)| v)).filter(|v| *v > 0.0);
        let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = match lo <= hi {
            true => (
                lo.log10().floor(),
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            ),
            false => (0.0, 1.0),
        };
        Panel {
            x: LogAxis {
                lo: X_RANGE.0,
                hi: X_RANGE.1,
                px0: left,
                px1: left + PANEL_W,
            },
            y: LogAxis {
                lo,
                hi,
                px0: top + PANEL_H,
                px1: top,
            },
            title,
            curves,
            limit,
        }
    }

    fn draw(&self, svg: &mut String) {
        self.frame(svg);
        self.x_ticks(svg);
        self.y_ticks(svg);
        if let Some((value, label)) = self.limit {
            let y = self.y.px(value.log10());
            let _ = writeln!(
                svg,
                r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#555" stroke-dasharray="2 3"/><text x="{}" y="{:.1}" fill="#555" text-anchor="end">{label}: {value:.0}</text>"##,
                self.x.px0,
                self.x.px1,
                self.x.px1 - 4.0,
                y - 5.0
            );
        }
        for (points, (_, color, dash)) in self.curves.iter().zip([OURS, ETCD]) {
            self.curve(svg, points, color, dash);
        }
    }

    fn frame(&self, svg: &mut String) {
        let (x0, x1, y0, y1) = (self.x.px0, self.x.px1, self.y.px1, self.y.px0);
        let _ = writeln!(
            svg,
            r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#333"/>
<text x="{cx}" y="{ty}" font-size="13" text-anchor="middle">{title}</text>
<text x="{cx}" y="{by}" text-anchor="middle">entry size</text>"##,
            w = x1 - x0,
            h = y1 - y0,
            cx = (x0 + x1) / 2.0,
            ty = y0 - 10.0,
            by = y1 + 36.0,
            title = self.title
        );
    }

    fn x_ticks(&self, svg: &mut String) {
        for (log2, label) in [
            (6.0, "64 B"),
            (10.0, "1 KiB"),
            (14.0, "16 KiB"),
            (18.0, "256 KiB"),
            (20.0, "1 MiB"),
        ] {
            let x = self.x.px(log2);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#ddd"/><text x="{x:.1}" y="{ty}" text-anchor="middle">{label}</text>"##,
                y0 = self.y.px1,
                y1 = self.y.px0,
                ty = self.y.px0 + 16.0
            );
        }
    }

    fn y_ticks(&self, svg: &mut String) {
        let mut decade = self.y.lo;
        while decade <= self.y.hi {
            let y = self.y.px(decade);
            let _ = writeln!(
                svg,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"##,
                x0 = self.x.px0,
                x1 = self.x.px1,
                tx = self.x.px0 - 6.0,
                ty = y + 4.0,
                label = si(10f64.powf(decade))
            );
            decade += 1.0;
        }
    }

    fn curve(&self, svg: &mut String, points: &[Point], color: &str, dash: &str) {
        let at = |p: &Point, v: f64| (self.x.px(p.size.log2()), self.y.px(v.log10()));
        let path: Vec<String> = points
            .iter()
            .map(|p| at(p, p.median))
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
            path.join(" ")
        );
        for p in points {
            let ((x, lo), (_, hi), (_, y)) = (at(p, p.min), at(p, p.max), at(p, p.median));
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{lo:.1}" x2="{x:.1}" y2="{hi:.1}" stroke="{color}"/><circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{color}"><title>{:.0} B: {:.0}</title></circle>"#,
                p.size, p.median
            );
        }
    }
}

/// 1, 10, 100, 1k, 10k, 100k, 1M, ...
fn si(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results() -> Vec<Value> {
        vec![
            json!({"case": "sweep_64B", "side": "ours", "entry_bytes": 64, "delivered_per_s": 50000.0, "mb_per_s": 3.2}),
            json!({"case": "sweep_64B", "side": "ours", "entry_bytes": 64, "delivered_per_s": 60000.0, "mb_per_s": 3.84}),
            json!({"case": "sweep_64B", "side": "ours", "entry_bytes": 64, "delivered_per_s": 40000.0, "mb_per_s": 2.56}),
            json!({"case": "sweep_1MiB", "side": "etcd", "entry_bytes": 1048576, "delivered_per_s": 400.0, "mb_per_s": 419.4}),
            json!({"case": "w1_retry", "side": "ours", "entry_bytes": 256, "delivered_per_s": 1.0}),
            json!({"case": "ref_tcp", "side": "etcd", "mb_per_s": 3000.0}),
        ]
    }

    #[test]
    fn takes_the_sweep_cases_by_side_and_the_tcp_limit() {
        let sweep = Sweep::from_results(&results());
        let ours = points(&sweep.msgs[0]);
        let want = Point {
            size: 64.0,
            median: 50000.0,
            min: 40000.0,
            max: 60000.0,
        };
        assert_eq!(ours, vec![want]);
        assert_eq!(points(&sweep.mb[1]).len(), 1);
        assert_eq!(sweep.tcp_mb, vec![3000.0]);
    }

    #[test]
    fn the_svg_has_both_panels_both_curves_and_the_limit() {
        let svg = Sweep::from_results(&results()).svg();
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("loopback TCP (ref_tcp): 3000"));
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
    }

    #[test]
    fn the_y_axis_spans_whole_decades_around_the_data() {
        let curves = [
            vec![Point {
                size: 64.0,
                median: 500.0,
                min: 450.0,
                max: 52_000.0,
            }],
            vec![],
        ];
        let panel = Panel::new((0.0, 0.0), "t", &curves, None);
        assert_eq!((panel.y.lo, panel.y.hi), (2.0, 5.0));
        assert_eq!(panel.y.px(2.0), PANEL_H);
        assert_eq!(panel.y.px(5.0), 0.0);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn nothing_to_plot_is_an_error() {
        assert!(Sweep::from_results(&[json!({"case": "w1_retry", "side": "ours"})]).is_empty());
    }
}
