//! Figures with `plotters`: panels of line or grouped-bar series, written as SVG and PNG.
//!
//! Text is drawn with the bundled DejaVu Sans subset (`fonts/`, Bitstream Vera license beside
//! it) through plotters' `ab_glyph` feature, registered once as `sans-serif`: no system font,
//! fontconfig or freetype. The PNG is rendered into an RGB buffer ([`BitMapBackend`]) and
//! encoded with the `png` crate.
//!
//! Every series of a figure gets one colour, the same in every panel where its name appears
//! (a model's valid curve in the loss and the accuracy panel), so a figure with k series
//! names draws lines in exactly k colours ([`Figure::series_names`]): tests count them.
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::AnalysisError;

/// DejaVu Sans, subset to Latin-1, Greek and a few symbols (see `fonts/LICENSE-DejaVu.txt`).
const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// The font family every text of a figure uses.
pub const FAMILY: &str = "sans-serif";

/// Register the bundled font as [`FAMILY`] (once per process).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("fonts/DejaVuSans-subset.ttf: not a readable font"));
    });
}

/// Ten well-separated colours (matplotlib's tab10).
const TAB10: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// The colour of series `i` of `n`: tab10 up to ten series, else `n` hues around the circle.
pub fn series_color(i: usize, n: usize) -> RGBColor {
    if n <= TAB10.len() {
        let (r, g, b) = TAB10[i % TAB10.len()];
        return RGBColor(r, g, b);
    }
    let hue = i as f64 / n as f64;
    let light = if i.is_multiple_of(2) { 0.42 } else { 0.58 };
    let (r, g, b) = hsl_to_rgb(hue, 0.75, light);
    RGBColor(r, g, b)
}

fn hsl_to_rgb(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let q = if l < 0.5 {
        l * (1.0 + s)
    } else {
        l + s - l * s
    };
    let p = 2.0 * l - q;
    let channel = |t: f64| {
        let t = t.rem_euclid(1.0);
        let v = if t < 1.0 / 6.0 {
            p + (q - p) * 6.0 * t
        } else if t < 0.5 {
            q
        } else if t < 2.0 / 3.0 {
            p + (q - p) * (2.0 / 3.0 - t) * 6.0
        } else {
            p
        };
        (v * 255.0).round() as u8
    };
    (channel(h + 1.0 / 3.0), channel(h), channel(h - 1.0 / 3.0))
}

/// One named line: `(x, y)` points in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name; the same name is the same colour in every panel.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// What a panel draws.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelKind {
    /// Lines.
    Lines(Vec<Series>),
    /// Grouped bars: one group per category, one bar per series (`values[c]` of category c;
    /// NaN: no bar).
    Bars {
        /// Category names along x.
        categories: Vec<String>,
        /// `(series name, one value per category)`.
        series: Vec<(String, Vec<f64>)>,
    },
}

/// One chart of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Title above the chart.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x axis (lines only).
    pub log_x: bool,
    /// Logarithmic y axis (lines only).
    pub log_y: bool,
    /// The series.
    pub kind: PanelKind,
}

impl Panel {
    /// A panel of grouped bars (linear axes): one group per category, one bar per series.
    pub fn bars(
        title: impl Into<String>,
        x_label: &str,
        y_label: &str,
        categories: Vec<String>,
        series: Vec<(String, Vec<f64>)>,
    ) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            kind: PanelKind::Bars { categories, series },
        }
    }
}

/// Panels side by side, each `panel_size` pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Left to right.
    pub panels: Vec<Panel>,
    /// Width and height of one panel.
    pub panel_size: (u32, u32),
}

impl Figure {
    /// Every distinct series name of the figure, in first-appearance order: series `i` has
    /// colour [`series_color`]`(i, n)`.
    pub fn series_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for panel in &self.panels {
            let these: Vec<&String> = match &panel.kind {
                PanelKind::Lines(series) => series.iter().map(|s| &s.name).collect(),
                PanelKind::Bars { series, .. } => series.iter().map(|s| &s.0).collect(),
            };
            for name in these {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// Total size in pixels.
    pub fn size(&self) -> (u32, u32) {
        let (w, h) = self.panel_size;
        (w * self.panels.len().max(1) as u32, h)
    }

    /// Draw onto any plotters backend.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        register_font();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let names = self.series_names();
        let color = |name: &str| {
            let i = names.iter().position(|n| n == name).unwrap_or(0);
            series_color(i, names.len())
        };
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        for (panel, area) in self.panels.iter().zip(areas.iter()) {
            match &panel.kind {
                PanelKind::Lines(series) => draw_lines(area, panel, series, &color),
                PanelKind::Bars { categories, series } => {
                    draw_bars(area, panel, categories, series, &color)
                }
            }
            .map_err(|e| format!("panel \"{}\": {e}", panel.title))?;
        }
        root.present().map_err(|e| e.to_string())
    }

    /// The figure as SVG text.
    pub fn to_svg(&self) -> Result<String, String> {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, self.size()).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(text)
    }

    /// The figure as PNG bytes (RGB, 8 bits).
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        let (w, h) = self.size();
        let mut pixels = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            self.draw(&root)?;
        }
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(bytes)
    }

    /// Write `<stem>.svg` and `<stem>.png`; returns both paths.
    pub fn write(&self, stem: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
        let svg = stem.with_extension("svg");
        let png = stem.with_extension("png");
        let draw_error = |path: &Path| {
            let path = path.to_path_buf();
            move |message| AnalysisError::Draw { path, message }
        };
        let text = self.to_svg().map_err(draw_error(&svg))?;
        std::fs::write(&svg, text).map_err(|e| AnalysisError::io(&svg, "cannot write", e))?;
        let bytes = self.to_png().map_err(draw_error(&png))?;
        std::fs::write(&png, bytes).map_err(|e| AnalysisError::io(&png, "cannot write", e))?;
        Ok(vec![svg, png])
    }
}

/// The range of `values` padded by 5% (a unit range around a single value).
fn padded(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        return (lo / 1.2, hi * 1.2);
    }
    // A single value: 5% of its magnitude either side (a unit range around 0), so that the
    // ticks around e.g. step 1000 are distinct numbers.
    let pad = match hi > lo {
        true => (hi - lo) * 0.05,
        false if lo != 0.0 => lo.abs() * 0.05,
        false => 0.5,
    };
    (lo - pad, hi + pad)
}

/// A tick label: integers without decimals, other values with at most 3 significant digits.
fn tick(v: &f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        return format!("{v:.0}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{v:.digits$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

/// A tick label on a linear axis spanning `span`: [`tick`], with as many more decimals as the
/// axis needs to tell ten ticks apart (0.138 / 0.1385 / 0.139 on a narrow accuracy axis).
fn tick_within(v: &f64, span: f64) -> String {
    let short = tick(v);
    let step = span / 10.0;
    if v.fract() == 0.0 || step.is_nan() || step <= 0.0 || step >= 1.0 {
        return short;
    }
    let digits = ((-step.log10()).ceil() as usize).min(6);
    let text = format!("{v:.digits$}");
    let text = match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    };
    match text.len() > short.len() {
        true => text,
        false => short,
    }
}

/// Series with at most this many points are drawn with a marker on each point (a valid curve
/// of a few evaluations, or of one, which a line alone would not show).
const MARKED_POINTS: usize = 40;

/// The legend corner whose quarter of the panel (in axis coordinates) holds the fewest points.
fn emptiest_corner(
    series: &[Series],
    x: (f64, f64),
    y: (f64, f64),
    log_x: bool,
    log_y: bool,
) -> SeriesLabelPosition {
    let unit = |v: f64, (lo, hi): (f64, f64), log: bool| match log {
        true => (v.ln() - lo.ln()) / (hi.ln() - lo.ln()),
        false => (v - lo) / (hi - lo),
    };
    let mut counts = [0usize; 4]; // upper right, upper left, lower right, lower left
    for &(px, py) in series.iter().flat_map(|s| s.points.iter()) {
        let (u, w) = (unit(px, x, log_x), unit(py, y, log_y));
        let right = u > 0.5;
        if w > 0.55 {
            counts[if right { 0 } else { 1 }] += 1;
        } else if w < 0.45 {
            counts[if right { 2 } else { 3 }] += 1;
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    series: &[Series],
    color: &dyn Fn(&str) -> RGBColor,
) -> Result<(), String> {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let x = padded(points().map(|p| p.0), panel.log_x);
    let y = padded(points().map(|p| p.1), panel.log_y);
    let corner = emptiest_corner(series, x, y, panel.log_x, panel.log_y);
    let ticks = |log: bool, (lo, hi): (f64, f64)| {
        move |v: &f64| match log {
            true => tick(v),
            false => tick_within(v, hi - lo),
        }
    };
    let (x_tick, y_tick) = (ticks(panel.log_x, x), ticks(panel.log_y, y));
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(panel.x_label.as_str())
                .y_desc(panel.y_label.as_str())
                .x_label_formatter(&|v| x_tick(v))
                .y_label_formatter(&|v| y_tick(v))
                .label_style((FAMILY, 13))
                .axis_desc_style((FAMILY, 14))
                .light_line_style(WHITE)
                .bold_line_style(RGBColor(225, 225, 225))
                .draw()
                .map_err(|e| e.to_string())?;
            for s in series {
                let c = color(&s.name);
                let keep = |&(px, py): &(f64, f64)| {
                    px.is_finite()
                        && py.is_finite()
                        && (!panel.log_x || px > 0.0)
                        && (!panel.log_y || py > 0.0)
                };
                let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(keep).collect();
                if pts.len() <= MARKED_POINTS {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                        .map_err(|e| e.to_string())?;
                }
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(s.name.as_str())
                    .legend(move |(lx, ly)| {
                        Rectangle::new([(lx, ly - 5), (lx + 14, ly + 5)], c.filled())
                    });
            }
            chart
                .configure_series_labels()
                .label_font((FAMILY, 13))
                .background_style(WHITE)
                .border_style(RGBColor(160, 160, 160))
                .position(corner)
                .draw()
                .map_err(|e| e.to_string())?;
        }};
    }
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(panel.title.as_str(), (FAMILY, 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62);
    match (panel.log_x, panel.log_y) {
        (false, false) => body!(
            builder
                .build_cartesian_2d(x.0..x.1, y.0..y.1)
                .map_err(|e| e.to_string())?
        ),
        (true, false) => body!(
            builder
                .build_cartesian_2d((x.0..x.1).log_scale(), y.0..y.1)
                .map_err(|e| e.to_string())?
        ),
        (false, true) => body!(
            builder
                .build_cartesian_2d(x.0..x.1, (y.0..y.1).log_scale())
                .map_err(|e| e.to_string())?
        ),
        (true, true) => body!(
            builder
                .build_cartesian_2d((x.0..x.1).log_scale(), (y.0..y.1).log_scale())
                .map_err(|e| e.to_string())?
        ),
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    color: &dyn Fn(&str) -> RGBColor,
) -> Result<(), String> {
    let top = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let n_cat = categories.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title.as_str(), (FAMILY, 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(-0.5f64..(n_cat as f64 - 0.5), 0.0..(top * 1.15).max(1e-9))
        .map_err(|e| e.to_string())?;
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            categories.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n_cat)
        .x_label_formatter(&label)
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .y_label_formatter(&tick)
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / series.len().max(1) as f64;
    for (k, (name, values)) in series.iter().enumerate() {
        let c = color(name);
        // A category the series has no value for (NaN) has no bar.
        let bars = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| {
                let x0 = i as f64 - 0.4 + k as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], c.filled())
            });
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(lx, ly)| Rectangle::new([(lx, ly - 5), (lx + 14, ly + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 13))
        .background_style(WHITE)
        .border_style(RGBColor(160, 160, 160))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(&1000.0), "1000");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&0.3333333), "0.333");
        assert_eq!(tick(&2.5), "2.5");
        assert_eq!(tick(&150.4), "150");
    }

    #[test]
    fn ticks_tell_a_narrow_axis_apart() {
        // An accuracy axis 0.1378..0.1407: plain ticks would read 0.14, 0.14, 0.139, ...
        let labels: Vec<String> = [0.138, 0.1385, 0.139, 0.1395, 0.14]
            .iter()
            .map(|v| tick_within(v, 0.1407 - 0.1378))
            .collect();
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels, "{labels:?}");
        assert_eq!(labels[1], "0.1385");
        // Wide axes keep the short labels.
        assert_eq!(tick_within(&1000.0, 2000.0), "1000");
        assert_eq!(tick_within(&0.25, 1.0), "0.25");
        assert_eq!(tick_within(&2.4, 1.8), "2.4");
    }

    #[test]
    fn a_single_value_gets_a_range_of_its_own_scale() {
        let (lo, hi) = padded([1000.0].into_iter(), false);
        assert!(lo < 1000.0 && hi > 1000.0 && hi - lo > 50.0, "{lo}..{hi}");
        assert_eq!(padded([0.0].into_iter(), false), (-0.5, 0.5));
    }

    #[test]
    fn colours_are_distinct_for_many_series() {
        for n in [1, 4, 10, 11, 24, 64] {
            let mut all: Vec<RGBColor> = (0..n).map(|i| series_color(i, n)).collect();
            all.sort_by_key(|c| (c.0, c.1, c.2));
            all.dedup();
            assert_eq!(all.len(), n, "{n} series");
        }
    }
}
