//! Files the assistant sends: the `/week` chart (PNG) and the `/export` CSV.
//!
//! Pure functions of stored data, so every edge (Telegram, the CLI `chat`) sends the same
//! thing. The chart is drawn with plotters into memory and encoded as PNG; its text uses a font
//! compiled into the binary (Ubuntu Light, from `epaint_default_fonts`), so no system font is
//! needed on the server.

use std::io::Cursor;
use std::sync::Once;

use chrono::NaiveDate;
use chrono_tz::Tz;
use health_actors::domain::FoodEntry;
use plotters::prelude::*;
use plotters::style::FontStyle;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 480;
const FONT: &str = "sans-serif";

/// The kcal logged on one local day (`None` when nothing was logged).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayKcal {
    pub date: NaiveDate,
    pub kcal: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[error("the chart could not be drawn: {0}")]
pub struct ChartError(String);

fn register_font() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FONT, style, epaint_default_fonts::UBUNTU_LIGHT)
                .is_err()
            {
                tracing::warn!("the embedded chart font could not be loaded");
            }
        }
    });
}

/// A bar per day with the kcal above it, and the goal as a horizontal line; PNG bytes.
pub fn week_chart_png(days: &[DayKcal], goal: Option<f64>) -> Result<Vec<u8>, ChartError> {
    register_font();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw_week(&mut rgb, days, goal).map_err(|error| ChartError(error.to_string()))?;
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(Cursor::new(&mut png)),
        &rgb,
        WIDTH,
        HEIGHT,
        image::ColorType::Rgb8,
    )
    .map_err(|error| ChartError(error.to_string()))?;
    Ok(png)
}

fn draw_week(
    rgb: &mut [u8],
    days: &[DayKcal],
    goal: Option<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    // `into_segmented` makes one slot per value of `0..=last`.
    let last = (days.len() as i32 - 1).max(1);
    let highest = days
        .iter()
        .filter_map(|day| day.kcal)
        .fold(goal.unwrap_or(0.0), f64::max)
        .max(500.0);
    let top = (highest * 1.15 / 100.0).ceil() * 100.0;
    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = match goal {
        Some(goal) => format!("Calories per day (goal {goal:.0} kcal)"),
        None => "Calories per day".to_owned(),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 26))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d((0..last).into_segmented(), 0.0..top)?;
    let label = |value: &SegmentValue<i32>| match value {
        SegmentValue::CenterOf(index) => days
            .get(*index as usize)
            .map(|day| day.date.format("%a %-d").to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(days.len().max(1))
        .x_label_formatter(&label)
        .y_desc("kcal")
        .y_label_formatter(&|kcal| format!("{kcal:.0}"))
        .label_style((FONT, 15))
        .draw()?;

    let green = RGBColor(76, 160, 96);
    let orange = RGBColor(230, 140, 40);
    chart.draw_series(days.iter().enumerate().filter_map(|(index, day)| {
        let kcal = day.kcal?;
        let colour = match goal {
            Some(goal) if kcal > goal * 1.05 => orange,
            _ => green,
        };
        let index = index as i32;
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(index), 0.0),
                (SegmentValue::Exact(index + 1), kcal),
            ],
            colour.filled(),
        );
        bar.set_margin(0, 0, 14, 14);
        Some(bar)
    }))?;
    chart.draw_series(days.iter().enumerate().map(|(index, day)| {
        let (text, at) = match day.kcal {
            Some(kcal) => (format!("{kcal:.0}"), kcal),
            None => ("–".to_owned(), 0.0),
        };
        EmptyElement::at((SegmentValue::CenterOf(index as i32), at))
            + Text::new(text, (-14, -20), (FONT, 15).into_font())
    }))?;
    if let Some(goal) = goal {
        chart.draw_series(LineSeries::new(
            [
                (SegmentValue::Exact(0), goal),
                (SegmentValue::Exact(last + 1), goal),
            ],
            RED.stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// A CSV field, quoted when needed; a leading `= + - @` is neutralised so that a spreadsheet
/// never runs a description as a formula.
fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn amount(value: f64) -> String {
    let rounded = format!("{value:.1}");
    rounded
        .strip_suffix(".0")
        .map(str::to_owned)
        .unwrap_or(rounded)
}

/// Every entry, one row each, oldest first; times in the person's zone.
pub fn entries_csv(entries: &[FoodEntry], zone: Tz) -> String {
    let mut csv = String::from(
        "date,time,meal,description,kcal,protein_g,carbs_g,fat_g,fiber_g,items,source\n",
    );
    for entry in entries {
        let time = entry
            .eaten_at
            .with_timezone(&zone)
            .format("%H:%M")
            .to_string();
        let items = entry
            .items
            .iter()
            .map(|item| format!("{} ({} g)", item.name, amount(item.grams)))
            .collect::<Vec<_>>()
            .join("; ");
        let sources = entry
            .items
            .iter()
            .map(|item| item.source.label())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join("; ");
        let row = [
            entry.local_date.to_string(),
            time,
            entry
                .meal_type
                .map(|meal| meal.as_str().to_owned())
                .unwrap_or_default(),
            entry.description.clone(),
            format!("{:.0}", entry.total.kcal),
            amount(entry.total.protein_g),
            amount(entry.total.carbs_g),
            amount(entry.total.fat_g),
            amount(entry.total.fiber_g),
            items,
            sources,
        ];
        let line: Vec<String> = row.iter().map(|value| field(value)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week() -> Vec<DayKcal> {
        let monday = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        (0..7)
            .map(|offset| DayKcal {
                date: monday + chrono::Duration::days(offset),
                kcal: (offset != 3).then_some(1500.0 + 150.0 * offset as f64),
            })
            .collect()
    }

    #[test]
    fn the_week_chart_is_a_png_of_the_expected_size() {
        let png = week_chart_png(&week(), Some(1800.0)).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        // IHDR: width and height, big-endian, at bytes 16..24.
        assert_eq!(&png[16..20], &WIDTH.to_be_bytes());
        assert_eq!(&png[20..24], &HEIGHT.to_be_bytes());
        assert!(week_chart_png(&week(), None).is_ok());
        assert!(week_chart_png(&[], None).is_ok());
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(field("toast"), "toast");
        assert_eq!(field("eggs, toast"), "\"eggs, toast\"");
        assert_eq!(field("a \"big\" plate"), "\"a \"\"big\"\" plate\"");
        assert_eq!(field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(amount(12.0), "12");
        assert_eq!(amount(12.25), "12.2");
    }
}
