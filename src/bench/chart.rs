//! The chart of a sweep, as SVG (plotters): target tokens per second and batch latency (p50
//! solid, p95 dashed) against batch size, one line per precision and thread count.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::sweep::SweepPoint;
use crate::write::atomic::AtomicFile;

/// Chart size in pixels.
const SIZE: (u32, u32) = (1100, 460);

/// Writes the chart of `points` to `path` (atomically), titled `title`.
pub fn write_svg(path: &Path, title: &str, points: &[SweepPoint]) -> Result<()> {
    let svg = render_svg(title, points)?;
    let mut file = AtomicFile::create(path)?;
    std::io::Write::write_all(&mut file, svg.as_bytes())
        .with_context(|| format!("{}: cannot write the chart", path.display()))?;
    file.commit()
}

/// One line of the chart: the points of one precision and thread count, by batch size.
struct Line<'a> {
    label: String,
    points: Vec<&'a SweepPoint>,
}

fn lines(points: &[SweepPoint]) -> Vec<Line<'_>> {
    let mut lines: Vec<Line<'_>> = Vec::new();
    for point in points {
        let label = format!("{}, {} threads", point.precision, point.threads);
        match lines.iter_mut().find(|l| l.label == label) {
            Some(line) => line.points.push(point),
            None => lines.push(Line {
                label,
                points: vec![point],
            }),
        }
    }
    for line in &mut lines {
        line.points.sort_by_key(|p| p.batch);
    }
    lines
}

/// The chart as an SVG document.
pub fn render_svg(title: &str, points: &[SweepPoint]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(draw_error)?;
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        let lines = lines(points);
        // The batch sizes measured, equally spaced (a log axis for the usual powers of two),
        // each labelled.
        let mut sizes: Vec<usize> = points.iter().map(|p| p.batch).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let slot = |batch: usize| sizes.iter().position(|&b| b == batch).unwrap_or(0) as i32;
        let x_range = || 0i32..(sizes.len() as i32 - 1).max(1);
        let batch_label = |x: &i32| {
            sizes
                .get(*x as usize)
                .map_or(String::new(), |b| b.to_string())
        };
        let max_rate = points
            .iter()
            .map(|p| p.report.target_tokens_per_s)
            .fold(1.0, f64::max);
        let latencies = points
            .iter()
            .flat_map(|p| [p.report.latency_p50_ms, p.report.latency_p95_ms]);
        let max_latency = latencies.clone().fold(1.0, f64::max);
        let min_latency = latencies.fold(max_latency, f64::min).max(0.01);

        let mut rate = ChartBuilder::on(&left)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .caption("target tokens/s", ("sans-serif", 16))
            .build_cartesian_2d(x_range(), 0f64..max_rate * 1.1)
            .map_err(draw_error)?;
        rate.configure_mesh()
            .light_line_style(WHITE)
            .x_labels(sizes.len())
            .x_desc("batch size (sentences)")
            .y_desc("target tokens/s")
            .x_label_formatter(&batch_label)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(draw_error)?;
        let mut latency = ChartBuilder::on(&right)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .caption(
                "batch latency, ms (p50 solid, p95 dashed)",
                ("sans-serif", 16),
            )
            .build_cartesian_2d(
                x_range(),
                (min_latency * 0.8..max_latency * 1.25).log_scale(),
            )
            .map_err(draw_error)?;
        latency
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(sizes.len())
            .x_desc("batch size (sentences)")
            .y_desc("ms")
            .x_label_formatter(&batch_label)
            .y_label_formatter(&|y| {
                if *y < 10.0 {
                    format!("{y:.1}")
                } else {
                    format!("{y:.0}")
                }
            })
            .draw()
            .map_err(draw_error)?;

        for (i, line) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let xy = |f: fn(&SweepPoint) -> f64| -> Vec<(i32, f64)> {
                line.points.iter().map(|p| (slot(p.batch), f(p))).collect()
            };
            let style = ShapeStyle::from(&color).stroke_width(2);
            rate.draw_series(LineSeries::new(xy(|p| p.report.target_tokens_per_s), style))
                .map_err(draw_error)?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            rate.draw_series(
                xy(|p| p.report.target_tokens_per_s)
                    .into_iter()
                    .map(|xy| Circle::new(xy, 3, color.filled())),
            )
            .map_err(draw_error)?;
            latency
                .draw_series(LineSeries::new(xy(|p| p.report.latency_p50_ms), style))
                .map_err(draw_error)?;
            latency
                .draw_series(DashedLineSeries::new(
                    xy(|p| p.report.latency_p95_ms),
                    6,
                    4,
                    style,
                ))
                .map_err(draw_error)?;
        }
        rate.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e:?}")
}
