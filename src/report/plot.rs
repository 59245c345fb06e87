//! Shot-scaling plots (metric against shot count, one line per run, dashed lines for published numbers,
//! bars for confidence intervals) as SVG and PNG, drawn with `plotters`. The PNG's text is rendered with
//! the bundled DejaVu Sans (fonts/, Bitstream Vera licence), so the output does not depend on system fonts.

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::Once;

/// One line of the plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    /// (shot, value, optional (low, high) interval).
    pub points: Vec<(usize, f64, Option<(f64, f64)>)>,
    /// Published numbers are drawn dashed, without markers.
    pub published: bool,
}

pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 540;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("fonts/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).ok().expect("bundled font is valid");
    });
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The y-axis of a metric on the ×100 scale: 0–100 for the bounded metrics (accuracies, ROC-AUC), 0 to at least
/// 100 for CIDEr (unbounded above: up to the largest value, rounded up to a multiple of 10).
pub fn y_range(metric_key: &str, series: &[Series]) -> (f64, f64) {
    let hi = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [Some(p.1), p.2.map(|c| c.1)]))
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let lo = series.iter().flat_map(|s| s.points.iter().flat_map(|p| [Some(p.1), p.2.map(|c| c.0)])).flatten().filter(|v| v.is_finite()).fold(0.0f64, f64::min);
    match metric_key {
        "cider" => (lo, (hi * 1.05 / 10.0).ceil().max(10.0) * 10.0),
        _ => (lo, hi.max(100.0)),
    }
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, title: &str, y_label: &str, series: &[Series], y: Option<(f64, f64)>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plot: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let mut shots: Vec<usize> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    shots.sort_unstable();
    shots.dedup();
    if shots.is_empty() {
        return Err(anyhow!("plot: no points"));
    }
    let pos = |shot: usize| shots.iter().position(|&s| s == shot).unwrap() as f64;
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [Some(p.1), p.2.map(|c| c.0), p.2.map(|c| c.1)]))
        .flatten()
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1.0);
    let (lo, hi) = match y {
        Some(r) => r,
        None => ((lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY }), hi + pad),
    };
    let n = shots.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..(n - 0.5), lo..hi)
        .map_err(err)?;
    let shots_for_labels = shots.clone();
    chart
        .configure_mesh()
        .x_labels(shots.len() + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < shots_for_labels.len() {
                shots_for_labels[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .x_desc("shots")
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let (mut run_i, mut pub_i) = (0usize, 0usize);
    for s in series {
        let color = if s.published {
            pub_i += 1;
            PALETTE[(PALETTE.len() - pub_i % PALETTE.len()) % PALETTE.len()]
        } else {
            run_i += 1;
            PALETTE[(run_i - 1) % PALETTE.len()]
        };
        let pts: Vec<(f64, f64)> = s.points.iter().filter(|p| p.1.is_finite()).map(|p| (pos(p.0), p.1)).collect();
        let style = ShapeStyle { color: color.to_rgba(), filled: true, stroke_width: if s.published { 2 } else { 3 } };
        let anno = if s.published {
            chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style)).map_err(err)?
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(err)?
        };
        anno.label(s.label.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        if !s.published {
            chart.draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 5, color.filled()))).map_err(err)?;
            for p in &s.points {
                if let Some((l, h)) = p.2 {
                    if l.is_finite() && h.is_finite() {
                        let x = pos(p.0);
                        chart.draw_series(std::iter::once(PathElement::new(vec![(x, l), (x, h)], color.stroke_width(1)))).map_err(err)?;
                        for y in [l, h] {
                            chart
                                .draw_series(std::iter::once(PathElement::new(vec![(x - 0.06, y), (x + 0.06, y)], color.stroke_width(1))))
                                .map_err(err)?;
                        }
                    }
                }
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// The plot as an SVG document; `y`: the y-axis range (None: fitted to the data).
pub fn svg(title: &str, y_label: &str, series: &[Series], y: Option<(f64, f64)>) -> Result<String> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(root, title, y_label, series, y)?;
    }
    Ok(out)
}

/// The plot as a PNG file's bytes (RGB, 8 bit).
pub fn png(title: &str, y_label: &str, series: &[Series], y: Option<(f64, f64)>) -> Result<Vec<u8>> {
    register_font();
    let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(root, title, y_label, series, y)?;
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| anyhow!("png: {e}"))?;
        w.write_image_data(&rgb).map_err(|e| anyhow!("png: {e}"))?;
    }
    Ok(bytes)
}
