//! `--plot`: throughput (top) and p50/p99 latency (bottom) per second, as an SVG drawn with
//! plotters' SVG backend (no fonts or bitmap dependencies: text stays SVG text).

use std::path::Path;

use plotters::prelude::*;

use super::stats::Second;

pub fn draw(path: &Path, title: &str, seconds: &[Second]) -> Result<(), String> {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(290);
    let x_max = seconds.iter().map(|s| s.second + 1).max().unwrap_or(1);
    let ops_max = seconds.iter().map(|s| s.ops).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut c = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0u32..x_max, 0f64..ops_max)
        .map_err(|e| e.to_string())?;
    c.configure_mesh().x_desc("second").y_desc("ops/s").draw().map_err(|e| e.to_string())?;
    c.draw_series(LineSeries::new(seconds.iter().map(|s| (s.second, s.ops as f64)), &BLUE))
        .map_err(|e| e.to_string())?
        .label("ops/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.configure_series_labels().border_style(BLACK).draw().map_err(|e| e.to_string())?;

    let lat_max = seconds.iter().map(|s| s.p99_us).max().unwrap_or(1).max(1) as f64 / 1000.0 * 1.1;
    let mut c = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0u32..x_max, 0f64..lat_max)
        .map_err(|e| e.to_string())?;
    c.configure_mesh().x_desc("second").y_desc("latency (ms)").draw().map_err(|e| e.to_string())?;
    for (name, color, f) in [
        ("p50", GREEN, (|s: &Second| s.p50_us) as fn(&Second) -> u64),
        ("p99", RED, |s: &Second| s.p99_us),
    ] {
        c.draw_series(LineSeries::new(seconds.iter().map(|s| (s.second, f(s) as f64 / 1000.0)), color))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    c.configure_series_labels().border_style(BLACK).draw().map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
