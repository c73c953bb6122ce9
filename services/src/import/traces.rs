//! Position history from trace files (GPX, GeoLife `.plt`, CSV; see
//! [`safegrid_geodata::trace_file`]): a unit's fixes, checked against the history's retention
//! before any is stored.

use super::{ImportError, ImportOptions, Row, RowFault};
use crate::positions::Fix;
use chrono::{DateTime, Duration, Utc};
use safegrid_geodata::trace_file::{self, TraceFormat, TracePoint};
use std::collections::BTreeMap;

/// Reads a trace file into fixes of `device` (or of the device each CSV row names).
///
/// # Errors
/// [`ImportError::Format`] for a file of no known trace format or without a device;
/// [`ImportError::Rows`] naming every bad line.
pub fn read(
    text: &str,
    format: TraceFormat,
    device: Option<&str>,
    opts: &ImportOptions,
) -> Result<Vec<Fix>, ImportError> {
    // GPX and .plt are WGS-84 by definition; --crs speaks for a CSV.
    let crs = if format == TraceFormat::Csv { opts.source_crs() } else { safegrid_geodata::Crs::Wgs84 };
    let points = trace_file::read(text, format, crs, opts.max_errors).map_err(|e| ImportError::Rows {
        first: None,
        faults: e
            .faults
            .into_iter()
            .map(|f| RowFault { row: Row::Line(f.line), label: None, field: f.field, reason: f.reason })
            .collect(),
        more: e.more,
    })?;
    points
        .into_iter()
        .map(|p| {
            let id = p.device.clone().or_else(|| device.map(str::to_owned)).ok_or_else(|| {
                ImportError::Format(
                    "the file does not say whose trace it is: give the tracker's device id with --device ID".into(),
                )
            })?;
            Ok(fix(id, &p))
        })
        .collect()
}

fn fix(device_id: String, p: &TracePoint) -> Fix {
    Fix {
        device_id,
        secret: None,
        time: p.time,
        pos: p.pos,
        speed_mps: p.speed_mps,
        bearing_deg: p.course_deg.map(|c| c.rem_euclid(360.0)),
        altitude_m: p.altitude_m,
        accuracy_m: p.accuracy_m,
        battery_pct: None,
        valid: true,
        attributes: BTreeMap::new(),
    }
}

/// Refuses a history with fixes the store would not keep: older than the retention (the server
/// deletes them hourly) or ahead of now — the whole file, before anything is stored.
///
/// # Errors
/// [`ImportError::Format`] naming how many, the oldest or newest, and `--retention-days`.
pub fn check_window(fixes: &[Fix], retention: Duration, now: DateTime<Utc>) -> Result<(), ImportError> {
    let oldest_kept = now - retention;
    let old: Vec<&Fix> = fixes.iter().filter(|f| f.time < oldest_kept).collect();
    if let Some(first) = old.iter().map(|f| f.time).min() {
        let days_needed = (now - first).num_days() + 1;
        return Err(ImportError::Format(format!(
            "{} of {} fixes are older than the {} days of history kept (the oldest is {}): nothing was imported. \
             The server deletes older fixes hourly; to keep these, run it and this import with --retention-days {days_needed} or more",
            old.len(),
            fixes.len(),
            retention.num_days(),
            first.format("%Y-%m-%d %H:%M:%S UTC")
        )));
    }
    let future = fixes.iter().filter(|f| f.time > now + Duration::minutes(2)).count();
    if future > 0 {
        return Err(ImportError::Format(format!(
            "{future} of {} fixes are in the future by this machine's clock: nothing was imported",
            fixes.len()
        )));
    }
    Ok(())
}
