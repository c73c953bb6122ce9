//! Position traces from the files people have: GPX track points (1.0 and 1.1, with Garmin's
//! track-point extension), GeoLife `.plt` (Microsoft Research's GPS trajectories), and CSV with
//! a time column. Read whole, every fault named by its line, up to a limit.
//!
//! | format | position | time | also read |
//! |---|---|---|---|
//! | GPX | `<trkpt lat lon>` | `<time>` (ISO-8601) | `<ele>`; `<speed>` (m/s), `<course>` (GPX 1.0 or the `gpxtpx` extension) |
//! | `.plt` | fields 1–2 (lat, lon) after 6 header lines | fields 6–7 (date, time, UTC) | field 4, altitude in feet (-777: none) |
//! | CSV | `lon`/`lng`/`longitude`/`x`, `lat`/`latitude`/`y` | `time`/`timestamp`/`t`/`datetime`: ISO-8601 with an offset, unix seconds or milliseconds, or a date and time without an offset, read as China time (UTC+8) | `device_id`/`device`, `speed_mps`/`speed` (m/s), `bearing`/`course`/`heading`, `altitude`/`ele`, `accuracy` |
//!
//! GPX and `.plt` positions are WGS-84 by their formats' definitions; a CSV's are in the CRS the
//! caller names.

use crate::{Crs, LonLat};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use std::fmt;

/// A trace file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// GPS Exchange Format.
    Gpx,
    /// GeoLife trajectory (`.plt`).
    Plt,
    /// CSV with a header row.
    Csv,
}

impl TraceFormat {
    /// The format a file's extension names (`.gpx`, `.plt`, `.csv`).
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        [(".gpx", Self::Gpx), (".plt", Self::Plt), (".csv", Self::Csv)]
            .into_iter()
            .find_map(|(ext, f)| lower.ends_with(ext).then_some(f))
    }
}

/// One point of a trace, converted to WGS-84.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePoint {
    /// When.
    pub time: DateTime<Utc>,
    /// Where (WGS-84).
    pub pos: LonLat,
    /// Altitude, metres.
    pub altitude_m: Option<f64>,
    /// Ground speed, m/s.
    pub speed_mps: Option<f64>,
    /// Course over ground, degrees.
    pub course_deg: Option<f64>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f64>,
    /// The device or unit the row names (CSV), if any.
    pub device: Option<String>,
}

/// One fault: the file's line, the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceFault {
    /// 1-based line of the file.
    pub line: usize,
    /// The field at fault.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for TraceFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.reason)
    }
}

/// A trace that does not read: its faults (the first `max`) and how many more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", faults_text(.faults, *.more))]
pub struct TraceError {
    /// Faults in file order.
    pub faults: Vec<TraceFault>,
    /// Faults past the limit, counted.
    pub more: usize,
}

fn faults_text(faults: &[TraceFault], more: usize) -> String {
    let mut s = format!("{} faults:", faults.len() + more);
    for f in faults {
        s.push_str("\n  ");
        s.push_str(&f.to_string());
    }
    if more > 0 {
        s.push_str(&format!("\n  … and {more} more"));
    }
    s
}

struct Faults {
    max: usize,
    list: Vec<TraceFault>,
    more: usize,
}

impl Faults {
    fn push(&mut self, line: usize, field: &str, reason: impl Into<String>) {
        if self.list.len() < self.max {
            self.list.push(TraceFault { line, field: field.to_owned(), reason: reason.into() });
        } else {
            self.more += 1;
        }
    }

    fn finish(self, points: Vec<TracePoint>) -> Result<Vec<TracePoint>, TraceError> {
        if self.list.is_empty() { Ok(points) } else { Err(TraceError { faults: self.list, more: self.more }) }
    }
}

/// Reads a trace in `format`, its positions given in `crs`, naming up to `max_faults` faults.
/// Points come in file order.
///
/// # Errors
/// [`TraceError`] with every fault found (up to the limit): a line that is not a point, a
/// position out of range, a time that does not read.
pub fn read(text: &str, format: TraceFormat, crs: Crs, max_faults: usize) -> Result<Vec<TracePoint>, TraceError> {
    let mut faults = Faults { max: max_faults.max(1), list: Vec::new(), more: 0 };
    let points = match format {
        TraceFormat::Gpx => gpx(text, crs, &mut faults),
        TraceFormat::Plt => plt(text, crs, &mut faults),
        TraceFormat::Csv => csv(text, crs, &mut faults),
    };
    faults.finish(points)
}

/// Splits a trace, in time order, where two points are more than `max_gap` apart in time: the
/// trips of a unit, not one line across days.
#[must_use]
pub fn segments<T>(points: &[T], time: impl Fn(&T) -> DateTime<Utc>, max_gap: chrono::Duration) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if time(&points[i]) - time(&points[i - 1]) > max_gap {
            out.push(&points[start..i]);
            start = i;
        }
    }
    if start < points.len() {
        out.push(&points[start..]);
    }
    out
}

fn position(lon: f64, lat: f64, crs: Crs) -> Result<LonLat, (String, String)> {
    LonLat::new(lon, lat).map(|p| crs.to_wgs84(p)).map_err(|e| (e.field().to_owned(), e.to_string()))
}

/// An ISO-8601 time with an offset, unix seconds or milliseconds, or a local date and time read
/// as China time (UTC+8, all year), as the city's own systems write it: the one reading of a
/// trace's time, for imports and the patrol audit alike.
///
/// # Examples
/// ```
/// use safegrid_geodata::trace_file::parse_time;
/// let t = parse_time("2008-10-23 05:53:05").unwrap();
/// assert_eq!(t.to_rfc3339(), "2008-10-22T21:53:05+00:00");
/// assert_eq!(parse_time("1700000000").unwrap().timestamp(), 1_700_000_000);
/// assert_eq!(parse_time("yesterday"), None);
/// ```
#[must_use]
pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(x) = v.parse::<f64>() {
        // Below 2^31 seconds (2038) the number is seconds, above it milliseconds.
        let ms = if x < 2_147_483_648.0 { x * 1000.0 } else { x };
        return (x.is_finite() && x >= 0.0).then(|| Utc.timestamp_millis_opt(ms.round() as i64).single()).flatten();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    let china = chrono::FixedOffset::east_opt(8 * 3600)?;
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .into_iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .and_then(|t| t.and_local_timezone(china).single())
        .map(|t| t.with_timezone(&Utc))
}

/// What a GPX track point's children said.
#[derive(Default)]
struct Partial {
    time: Option<DateTime<Utc>>,
    altitude_m: Option<f64>,
    speed_mps: Option<f64>,
    course_deg: Option<f64>,
}

/// GPX: track points anywhere in the document, read as a stream.
fn gpx(text: &str, crs: Crs, faults: &mut Faults) -> Vec<TracePoint> {
    use quick_xml::events::Event;
    // Line starts, for naming a fault's line from the reader's byte position.
    let starts: Vec<usize> =
        std::iter::once(0).chain(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1)).collect();
    let line_of = |pos: usize| starts.partition_point(|s| *s <= pos);
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Vec::new();
    // The open track point: its line, position, and what its children said so far.
    type Open = (usize, Result<LonLat, (String, String)>, Partial);
    let mut open: Option<Open> = None;
    let mut field: Option<Vec<u8>> = None;
    let mut seen_gpx = false;
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                faults.push(line_of(at), "gpx", format!("not well-formed XML: {e}"));
                break;
            }
        };
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"gpx" => seen_gpx = true,
            Event::Start(e) if e.local_name().as_ref() == b"trkpt" => {
                let attr = |k: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == k)
                        .and_then(|a| std::str::from_utf8(&a.value).ok()?.trim().parse::<f64>().ok())
                };
                let pos = match (attr(b"lon"), attr(b"lat")) {
                    (Some(lon), Some(lat)) => position(lon, lat, crs),
                    _ => Err(("lat/lon".into(), "a <trkpt> needs numeric lat and lon".into())),
                };
                open = Some((line_of(at), pos, Partial::default()));
            }
            Event::Empty(e) if e.local_name().as_ref() == b"trkpt" => {
                faults.push(line_of(at), "time", "a track point needs its <time>");
            }
            Event::Start(e) if open.is_some() => field = Some(e.local_name().as_ref().to_vec()),
            Event::Text(t) => {
                if let (Some((line, _, p)), Some(name)) = (open.as_mut(), field.as_deref()) {
                    let raw = String::from_utf8_lossy(t.as_ref()).trim().to_owned();
                    let mut num = |what: &str| {
                        let x = raw.parse::<f64>().ok().filter(|x| x.is_finite());
                        if x.is_none() {
                            faults.push(*line, what, format!("{raw:?} is not a number"));
                        }
                        x
                    };
                    match name {
                        b"time" => match parse_time(&raw) {
                            Some(t) => p.time = Some(t),
                            None => faults.push(*line, "time", format!("{raw:?} is not an ISO-8601 time")),
                        },
                        b"ele" => p.altitude_m = num("ele"),
                        b"speed" => p.speed_mps = num("speed"),
                        b"course" => p.course_deg = num("course"),
                        _ => {}
                    }
                }
            }
            Event::End(e) if e.local_name().as_ref() == b"trkpt" => {
                if let Some((line, pos, p)) = open.take() {
                    match (pos, p.time) {
                        (Err((f, r)), _) => faults.push(line, &f, r),
                        (Ok(_), None) => faults.push(line, "time", "a track point needs its <time>"),
                        (Ok(pos), Some(time)) => out.push(TracePoint {
                            time,
                            pos,
                            altitude_m: p.altitude_m,
                            speed_mps: p.speed_mps,
                            course_deg: p.course_deg,
                            accuracy_m: None,
                            device: None,
                        }),
                    }
                }
                field = None;
            }
            Event::End(_) => field = None,
            _ => {}
        }
    }
    if !seen_gpx {
        faults.push(1, "gpx", "no <gpx> element: not a GPX file");
    }
    out
}

/// GeoLife `.plt`: six header lines, then `lat,lon,0,altitude_ft,days,date,time`.
fn plt(text: &str, crs: Crs, faults: &mut Faults) -> Vec<TracePoint> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate().skip(6) {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() < 7 {
            faults.push(
                line,
                "line",
                format!("expected 7 fields (lat,lon,0,altitude,days,date,time), found {}", f.len()),
            );
            continue;
        }
        let (lat, lon) = (f[0].parse::<f64>(), f[1].parse::<f64>());
        let pos = match (lon, lat) {
            (Ok(lon), Ok(lat)) => position(lon, lat, crs),
            _ => Err(("lat/lon".into(), format!("{:?}, {:?} are not numbers", f[0], f[1]))),
        };
        let time = NaiveDate::parse_from_str(f[5], "%Y-%m-%d")
            .ok()
            .zip(NaiveTime::parse_from_str(f[6], "%H:%M:%S").ok())
            .map(|(d, t)| d.and_time(t).and_utc());
        match (pos, time) {
            (Err((field, r)), _) => faults.push(line, &field, r),
            (_, None) => faults.push(line, "date/time", format!("{:?} {:?} is not a date and time", f[5], f[6])),
            (Ok(pos), Some(time)) => {
                // Feet; -777 marks "no altitude" in GeoLife.
                let altitude_m =
                    f[3].parse::<f64>().ok().filter(|a| (*a - -777.0).abs() > f64::EPSILON).map(|ft| ft * 0.3048);
                out.push(TracePoint {
                    time,
                    pos,
                    altitude_m,
                    speed_mps: None,
                    course_deg: None,
                    accuracy_m: None,
                    device: None,
                });
            }
        }
    }
    if text.lines().count() <= 6 {
        faults.push(1, "file", "a .plt file has six header lines, then one point per line; this has none");
    }
    out
}

/// CSV with a header naming the columns (see the module's table).
fn csv(text: &str, crs: Crs, faults: &mut Faults) -> Vec<TracePoint> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        faults.push(1, "header", "the file is empty");
        return Vec::new();
    };
    let cols: Vec<String> = header.split(',').map(|c| c.trim().trim_matches('"').to_ascii_lowercase()).collect();
    let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
    let lon = find(&["lon", "lng", "longitude", "x"]);
    let lat = find(&["lat", "latitude", "y"]);
    let time = find(&["time", "timestamp", "t", "datetime"]);
    let (Some(lon), Some(lat), Some(time)) = (lon, lat, time) else {
        faults.push(
            1,
            "header",
            format!("a trace CSV needs lon, lat and time columns; this one has {}", cols.join(", ")),
        );
        return Vec::new();
    };
    let device = find(&["device_id", "device", "unit"]);
    let speed = find(&["speed_mps", "speed"]);
    let course = find(&["bearing", "course", "heading"]);
    let altitude = find(&["altitude", "ele", "alt"]);
    let accuracy = find(&["accuracy"]);
    let mut out = Vec::new();
    for (i, l) in lines {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        if l.contains('"') {
            faults.push(line, "line", "quoted values are not read in a trace CSV: numbers, times and ids need none");
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() != cols.len() {
            faults.push(line, "line", format!("{} fields, the header has {}", f.len(), cols.len()));
            continue;
        }
        let num = |c: Option<usize>| c.and_then(|c| f[c].parse::<f64>().ok()).filter(|x| x.is_finite());
        let pos = match (f[lon].parse::<f64>(), f[lat].parse::<f64>()) {
            (Ok(x), Ok(y)) => position(x, y, crs),
            _ => Err(("lon/lat".into(), format!("{:?}, {:?} are not numbers", f[lon], f[lat]))),
        };
        match (pos, parse_time(f[time])) {
            (Err((field, r)), _) => faults.push(line, &field, r),
            (_, None) => faults.push(line, &cols[time], format!("{:?} is not ISO-8601 or unix time", f[time])),
            (Ok(pos), Some(t)) => out.push(TracePoint {
                time: t,
                pos,
                altitude_m: num(altitude),
                speed_mps: num(speed),
                course_deg: num(course),
                accuracy_m: num(accuracy),
                device: device.map(|c| f[c].to_owned()).filter(|d| !d.is_empty()),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_geolife_plt_reads_with_altitude_in_metres_and_times_in_utc() {
        let text = "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n0,2,255,My Track,0,0,2,8421376\n0\n\
                    39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04\n\
                    39.984683,116.31845,0,-777,39744.1202546296,2008-10-23,02:53:10\n";
        let p = read(text, TraceFormat::Plt, Crs::Wgs84, 10).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].pos.lon(), p[0].pos.lat()), (116.318_417, 39.984_702));
        assert_eq!(p[0].time, Utc.with_ymd_and_hms(2008, 10, 23, 2, 53, 4).unwrap());
        assert!((p[0].altitude_m.unwrap() - 149.96).abs() < 0.01);
        assert_eq!(p[1].altitude_m, None, "-777 is no altitude");
        let bad = text.replace("116.31845,", "216.31845,").replace("02:53:04", "25:61:00");
        let e = read(&bad, TraceFormat::Plt, Crs::Wgs84, 10).unwrap_err();
        let lines: Vec<usize> = e.faults.iter().map(|f| f.line).collect();
        assert_eq!(lines, [7, 8], "{e}");
    }

    #[test]
    fn gpx_track_points_read_with_speed_course_and_extensions() {
        let text = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1" xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v2">
 <trk><name>巡逻</name><trkseg>
  <trkpt lat="22.5431" lon="114.0579"><ele>12.5</ele><time>2026-11-22T08:00:00Z</time>
   <extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>3.5</gpxtpx:speed><gpxtpx:course>90</gpxtpx:course></gpxtpx:TrackPointExtension></extensions></trkpt>
  <trkpt lat="22.5432" lon="114.0580"><time>2026-11-22T08:00:05Z</time></trkpt>
 </trkseg></trk></gpx>"#;
        let p = read(text, TraceFormat::Gpx, Crs::Wgs84, 10).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].altitude_m, p[0].speed_mps, p[0].course_deg), (Some(12.5), Some(3.5), Some(90.0)));
        assert_eq!(p[1].time, Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 5).unwrap());
        let bad = text.replace("<time>2026-11-22T08:00:05Z</time>", "").replace("lat=\"22.5431\"", "lat=\"122.5\"");
        let e = read(&bad, TraceFormat::Gpx, Crs::Wgs84, 10).unwrap_err();
        let got: Vec<(usize, &str)> = e.faults.iter().map(|f| (f.line, f.field.as_str())).collect();
        assert_eq!(got, [(4, "lat"), (6, "time")], "{e}");
        assert!(read("<kml/>", TraceFormat::Gpx, Crs::Wgs84, 10).is_err());
    }

    #[test]
    fn csv_traces_take_foreign_column_names_and_unix_times() {
        let text = "device,longitude,latitude,timestamp,speed\nu1,114.05,22.54,1795334370,2.5\nu1,114.06,22.55,1795334370500,\n";
        let p = read(text, TraceFormat::Csv, Crs::Gcj02, 10).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].device.as_deref(), Some("u1"));
        assert_eq!(p[1].time.timestamp_millis(), 1_795_334_370_500);
        assert!((p[0].pos.lon() - 114.05).abs() > 1e-3, "converted from GCJ-02");
        let e = read("lon,lat\n1,2\n", TraceFormat::Csv, Crs::Wgs84, 10).unwrap_err();
        assert!(e.to_string().contains("time"), "{e}");
    }

    #[test]
    fn a_trace_splits_into_trips_at_long_gaps() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
        let times: Vec<DateTime<Utc>> =
            [0, 5, 10, 4_000, 4_005, 90_000].iter().map(|s| t0 + chrono::Duration::seconds(*s)).collect();
        let segs = segments(&times, |t| *t, chrono::Duration::minutes(10));
        assert_eq!(segs.iter().map(|s| s.len()).collect::<Vec<_>>(), [3, 2, 1]);
        assert!(segments(&times[..0], |t| *t, chrono::Duration::minutes(10)).is_empty());
    }
}
