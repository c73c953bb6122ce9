//! The point layers and their typed properties.
//!
//! Every item has an id, a position, the grid it falls in (computed by the service on every
//! write, never taken from the client), typed properties and timestamps. Properties are checked
//! at the edge by deserialising into the layer's struct (`deny_unknown_fields`, so a typo is an
//! error rather than silently dropped data); inside, they are trusted.

use chrono::{DateTime, NaiveDate, Utc};
use safegrid_geodata::{GridCode, LonLat};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// The five point layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Incidents and citizen reports (警情/事件).
    Incidents,
    /// Rental housing (出租屋).
    RentalHousing,
    /// Security posts, safety stations and police rooms (安保点, 平安易站, 警务室).
    Posts,
    /// Responders: police, patrol, guards, volunteers, grid workers.
    Responders,
    /// Key personnel (重点人员): sensitive, every read is audited.
    KeyPersonnel,
}

impl Layer {
    /// All layers, in a fixed order.
    pub const ALL: [Layer; 5] =
        [Layer::Incidents, Layer::RentalHousing, Layer::Posts, Layer::Responders, Layer::KeyPersonnel];

    /// The name used in URLs and as the table name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Incidents => "incidents",
            Self::RentalHousing => "rental_housing",
            Self::Posts => "posts",
            Self::Responders => "responders",
            Self::KeyPersonnel => "key_personnel",
        }
    }

    /// Whether reads of this layer are sensitive (role- and grid-scoped, and audited).
    #[must_use]
    pub fn is_sensitive(self) -> bool {
        matches!(self, Self::KeyPersonnel | Self::Responders)
    }

    /// Position in [`Layer::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The statuses an item of this layer may have, in tag order (see [`Props::status_tag`]).
    #[must_use]
    pub fn statuses(self) -> &'static [&'static str] {
        match self {
            Self::Incidents => IncidentStatus::NAMES,
            Self::RentalHousing => SafetyRating::NAMES,
            Self::Posts => &["open"],
            Self::Responders => ResponderStatus::NAMES,
            Self::KeyPersonnel => &["active", "inactive"],
        }
    }

    /// The properties an item of this layer takes (what an import may map columns onto).
    #[must_use]
    pub fn properties(self) -> &'static [&'static str] {
        match self {
            Self::Incidents => &["type", "priority", "status", "reported_at", "address", "description"],
            Self::RentalHousing => {
                &["address", "units", "tenant_count", "landlord_contact", "safety_rating", "last_inspection"]
            }
            Self::Posts => &["kind", "name", "phone", "radio_channel", "opening_hours"],
            Self::Responders => &["kind", "callsign", "status", "capabilities", "home_post", "device_id"],
            Self::KeyPersonnel => {
                &["category", "name", "assigned_grid", "caretaker", "last_seen_at", "active", "device_id", "zone"]
            }
        }
    }

    /// The kinds (`type` / `kind` / `category`) an item of this layer may have, when the list is
    /// closed; `None` where they are the city's own words (incident types, key-person categories).
    #[must_use]
    pub fn kinds(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Incidents | Self::KeyPersonnel => None,
            Self::RentalHousing => Some(&["rental_housing"]),
            Self::Posts => Some(PostKind::NAMES),
            Self::Responders => Some(ResponderKind::NAMES),
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A layer name that is not one of the five.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown layer {value:?}: expected incidents, rental_housing, posts, responders or key_personnel")]
pub struct UnknownLayer {
    /// The name as given.
    pub value: String,
}

impl FromStr for Layer {
    type Err = UnknownLayer;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL.into_iter().find(|l| l.name() == s).ok_or_else(|| UnknownLayer { value: s.to_owned() })
    }
}

macro_rules! name_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            /// Every accepted name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// The name used in JSON and the store.
            #[must_use]
            pub fn name(self) -> &'static str { match self { $(Self::$variant => $text),+ } }
            /// Position in [`Self::NAMES`].
            #[must_use]
            pub fn index(self) -> u32 { self as u32 }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                [$(Self::$variant),+]
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| format!("expected one of {}", Self::NAMES.join(", ")))
            }
        }
    };
}

name_enum!(
    /// Where an incident is in its handling.
    IncidentStatus {
        /// Reported; no unit sent yet.
        Open = "open",
        /// Units have been sent.
        Dispatched = "dispatched",
        /// A unit has arrived.
        OnScene = "on_scene",
        /// Handled; no longer open.
        Closed = "closed",
    }
);
name_enum!(
    /// Fire and structural safety grade of a rental house (A best).
    SafetyRating {
        /// The best grade.
        A = "a",
        /// The second grade.
        B = "b",
        /// The third grade.
        C = "c",
        /// The worst grade.
        D = "d",
    }
);
name_enum!(
    /// The three kinds of post citizens can walk to.
    PostKind {
        /// A security post (安保点).
        SecurityPost = "security_post",
        /// A safety station (平安站).
        SafetyStation = "safety_station",
        /// A community police room (警务室).
        PoliceRoom = "police_room",
    }
);
name_enum!(
    /// What a key person's zone asks.
    ZoneMode {
        /// The person must stay within the zone's grids: leaving them is a breach.
        StayInside = "stay_inside",
        /// The person must stay out of the zone's grids: entering them is a breach.
        KeepOut = "keep_out",
    }
);
name_enum!(
    /// Kinds of responder.
    ResponderKind {
        /// A police unit.
        Police = "police",
        /// A patrol team.
        Patrol = "patrol",
        /// A security guard.
        SecurityGuard = "security_guard",
        /// A volunteer.
        Volunteer = "volunteer",
        /// A grid worker (网格员).
        GridWorker = "grid_worker",
    }
);
name_enum!(
    /// A responder's availability.
    ResponderStatus {
        /// Free to be dispatched; what a cleared dispatch returns a unit to.
        Available = "available",
        /// Sent to an incident, not yet acknowledged.
        Dispatched = "dispatched",
        /// Has acknowledged a dispatch.
        Acknowledged = "acknowledged",
        /// On its way to an incident.
        EnRoute = "en_route",
        /// At an incident.
        OnScene = "on_scene",
        /// Coming back from a job; not yet available.
        Returning = "returning",
        /// Not on duty.
        OffDuty = "off_duty",
    }
);

/// Accepts a number or a string holding one: CSV cells arrive as text.
fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(u32),
        S(String),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => {
            s.trim().parse().map_err(|_| serde::de::Error::custom(format!("expected a whole number, got {s:?}")))
        }
    }
}

fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(i64),
        S(String),
    }
    match Option::<N>::deserialize(d)? {
        None => Ok(None),
        Some(N::N(n)) => Ok(Some(n)),
        Some(N::S(s)) if s.trim().is_empty() => Ok(None),
        Some(N::S(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected a whole number, got {s:?}"))),
    }
}

/// Accepts a JSON list of strings, or one string of items separated by `;` (CSV).
fn lenient_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L {
        L(Vec<String>),
        S(String),
    }
    Ok(match L::deserialize(d)? {
        L::L(v) => v,
        L::S(s) => s.split(';').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect(),
    })
}

/// Incident properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Type of incident, e.g. `theft`, `fight`, `fire`, `traffic`, `dispute`, `fraud`.
    #[serde(rename = "type")]
    pub incident_type: String,
    /// 1 (most urgent) to 4.
    #[serde(deserialize_with = "lenient_u32")]
    pub priority: u32,
    /// Handling status.
    pub status: IncidentStatus,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
    /// Street address as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Rental housing properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RentalHousing {
    /// Street address.
    pub address: String,
    /// Number of rentable units (rooms/flats).
    #[serde(deserialize_with = "lenient_u32")]
    pub units: u32,
    /// Registered tenants.
    #[serde(deserialize_with = "lenient_u32")]
    pub tenant_count: u32,
    /// Landlord's phone or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlord_contact: Option<String>,
    /// Safety grade.
    pub safety_rating: SafetyRating,
    /// Date of the last inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inspection: Option<NaiveDate>,
}

/// Security post properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post {
    /// Kind of post.
    pub kind: PostKind,
    /// Display name.
    pub name: String,
    /// Phone a citizen can call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Radio channel of the post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radio_channel: Option<String>,
    /// Opening hours as `HH:MM-HH:MM` or `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_hours: Option<String>,
}

/// Responder properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responder {
    /// Kind of responder.
    pub kind: ResponderKind,
    /// Call sign or name.
    pub callsign: String,
    /// Current availability.
    pub status: ResponderStatus,
    /// Capability tags, e.g. `first_aid`, `fire`, `negotiation`.
    #[serde(default, deserialize_with = "lenient_list")]
    pub capabilities: Vec<String>,
    /// Id of the post the responder is based at.
    #[serde(default, deserialize_with = "lenient_opt_i64", skip_serializing_if = "Option::is_none")]
    pub home_post: Option<i64>,
    /// Id of the tracker device that reports this responder's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// Key-personnel properties (sensitive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPerson {
    /// Category under which the person is followed (e.g. `community_correction`, `mental_health`).
    pub category: String,
    /// Full name.
    pub name: String,
    /// The grid responsible for the person (may differ from where they were last seen).
    pub assigned_grid: GridCode,
    /// The grid worker or officer who looks after the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caretaker: Option<String>,
    /// When the last known location (the item's position) was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Whether follow-up is active.
    #[serde(default = "yes")]
    pub active: bool,
    /// Id of the monitoring device the person wears, if any (court-ordered electronic
    /// monitoring): its fixes move the person, and `zone` is watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Where the person must stay, or must not go: crossing it alerts the assigned grid worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zone>,
}

/// A key person's zone: a set of grids (a unit code covers every grid beneath it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Stay inside these grids, or keep out of them.
    pub mode: ZoneMode,
    /// Grid or unit codes.
    pub grids: Vec<GridCode>,
}

impl Zone {
    /// Whether being in `grid` (`None`: outside every grid) breaks the zone.
    #[must_use]
    pub fn is_broken_in(&self, grid: Option<&GridCode>) -> bool {
        let inside = grid.is_some_and(|g| self.grids.iter().any(|z| z.covers(g)));
        match self.mode {
            ZoneMode::StayInside => !inside,
            ZoneMode::KeepOut => inside,
        }
    }
}

fn yes() -> bool {
    true
}

/// The typed properties of an item of any layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Props {
    /// See [`Incident`].
    Incident(Incident),
    /// See [`RentalHousing`].
    RentalHousing(RentalHousing),
    /// See [`Post`].
    Post(Post),
    /// See [`Responder`].
    Responder(Responder),
    /// See [`KeyPerson`].
    KeyPerson(KeyPerson),
}

/// A property that failed its check: which one, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PropsError {
    /// Property name, or `properties` when the object as a whole is wrong.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl Props {
    /// Checks a JSON object as the properties of an item of `layer`.
    ///
    /// # Errors
    /// [`PropsError`] naming the property.
    pub fn parse(layer: Layer, value: serde_json::Value) -> Result<Self, PropsError> {
        Self::parse_from(layer, value)
    }

    /// Checks the properties of an item of `layer` from any serde source (an import reads CSV
    /// cells straight into the typed struct, without a JSON object in between).
    ///
    /// # Errors
    /// [`PropsError`] naming the property.
    pub fn parse_from<'de, D: serde::Deserializer<'de>>(layer: Layer, source: D) -> Result<Self, PropsError> {
        fn de<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<T, PropsError> {
            serde_path_to_error::deserialize(d).map_err(|e| {
                let path = e.path().to_string();
                let reason = e.inner().to_string();
                // serde reports a missing or unknown field at the enclosing object ("."), naming
                // the field only in its message.
                let named = reason.split('`').nth(1).filter(|_| reason.contains("field"));
                let field = match (path.as_str(), named) {
                    (".", Some(f)) => f.to_owned(),
                    (".", None) => "properties".to_owned(),
                    (p, _) => p.to_owned(),
                };
                PropsError { field, reason }
            })
        }
        let props = match layer {
            Layer::Incidents => Self::Incident(de(source)?),
            Layer::RentalHousing => Self::RentalHousing(de(source)?),
            Layer::Posts => Self::Post(de(source)?),
            Layer::Responders => Self::Responder(de(source)?),
            Layer::KeyPersonnel => Self::KeyPerson(de(source)?),
        };
        props.check()?;
        Ok(props)
    }

    /// Range checks serde cannot express.
    fn check(&self) -> Result<(), PropsError> {
        let fail = |field: &str, reason: &str| Err(PropsError { field: field.into(), reason: reason.into() });
        match self {
            Self::Incident(i) if !(1..=4).contains(&i.priority) => fail("priority", "must be 1 (most urgent) to 4"),
            Self::Incident(i) if i.incident_type.trim().is_empty() => fail("type", "must not be empty"),
            Self::RentalHousing(h) if h.address.trim().is_empty() => fail("address", "must not be empty"),
            Self::Post(p) if p.name.trim().is_empty() => fail("name", "must not be empty"),
            Self::Responder(r) if r.callsign.trim().is_empty() => fail("callsign", "must not be empty"),
            Self::KeyPerson(k) if k.name.trim().is_empty() => fail("name", "must not be empty"),
            Self::KeyPerson(k) if k.zone.as_ref().is_some_and(|z| z.grids.is_empty()) => {
                fail("zone.grids", "name at least one grid or unit code")
            }
            _ => Ok(()),
        }
    }

    /// The layer these properties belong to.
    #[must_use]
    pub fn layer(&self) -> Layer {
        match self {
            Self::Incident(_) => Layer::Incidents,
            Self::RentalHousing(_) => Layer::RentalHousing,
            Self::Post(_) => Layer::Posts,
            Self::Responder(_) => Layer::Responders,
            Self::KeyPerson(_) => Layer::KeyPersonnel,
        }
    }

    /// The value the `type`/`kind`/`category` filter matches.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Incident(i) => &i.incident_type,
            Self::RentalHousing(_) => "rental_housing",
            Self::Post(p) => p.kind.name(),
            Self::Responder(r) => r.kind.name(),
            Self::KeyPerson(k) => &k.category,
        }
    }

    /// The value the `status` filter matches.
    #[must_use]
    pub fn status(&self) -> &'static str {
        let statuses = self.layer().statuses();
        statuses[self.status_tag() as usize]
    }

    /// The status as an index into [`Layer::statuses`], kept in the point index so that filtered
    /// nearest queries need no lookup.
    #[must_use]
    pub fn status_tag(&self) -> u32 {
        match self {
            Self::Incident(i) => i.status.index(),
            Self::RentalHousing(h) => h.safety_rating.index(),
            Self::Post(_) => 0,
            Self::Responder(r) => r.status.index(),
            Self::KeyPerson(k) => u32::from(!k.active),
        }
    }

    /// The time the `since`/`until` window filters on: when an incident was reported, when a
    /// house was last inspected, when a person was last seen; `None` for the others, which are
    /// filtered on their `updated_at`.
    #[must_use]
    pub fn observed_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Incident(i) => Some(i.reported_at),
            Self::RentalHousing(h) => h.last_inspection.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc()),
            Self::KeyPerson(k) => k.last_seen_at,
            Self::Post(_) | Self::Responder(_) => None,
        }
    }

    /// The incident priority, for the `priority` filter.
    #[must_use]
    pub fn priority(&self) -> Option<u32> {
        match self {
            Self::Incident(i) => Some(i.priority),
            _ => None,
        }
    }

    /// Capability tags (responders only).
    #[must_use]
    pub fn capabilities(&self) -> &[String] {
        match self {
            Self::Responder(r) => &r.capabilities,
            _ => &[],
        }
    }

    /// As a JSON object.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            // Every variant is a struct of plain fields, which serialises to an object.
            _ => serde_json::Map::new(),
        }
    }
}

/// One item of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Id, unique within the layer.
    pub id: i64,
    /// Position (WGS-84).
    pub pos: LonLat,
    /// The leaf grid the position falls in, if any.
    pub grid: Option<GridCode>,
    /// Typed properties; their variant gives the layer.
    pub props: Props,
    /// When the item was created.
    pub created_at: DateTime<Utc>,
    /// When the item was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Item {
    /// The item's layer.
    #[must_use]
    pub fn layer(&self) -> Layer {
        self.props.layer()
    }

    /// The time window filters apply to (see [`Props::observed_at`]).
    #[must_use]
    pub fn filter_time(&self) -> DateTime<Utc> {
        self.props.observed_at().unwrap_or(self.updated_at)
    }

    /// The item's tag in the point index: its status ([`Props::status_tag`], low
    /// [`tag::STATUS_BITS`] bits) and the hour of its filter time (the rest), so that status
    /// and time-window filters — the wall's `since` — are answered from the index alone, but
    /// for items in the window's first or last hour.
    #[must_use]
    pub fn index_tag(&self) -> u32 {
        tag::new(self.props.status_tag(), self.filter_time())
    }
}

/// The point-index tag of an item: status and hour packed in a `u32`.
pub mod tag {
    use chrono::{DateTime, Utc};

    /// Bits for the status index (every layer has fewer than 16 statuses).
    pub const STATUS_BITS: u32 = 4;
    const STATUS_MASK: u32 = (1 << STATUS_BITS) - 1;
    /// Hours are counted from 2020-01-01T00:00Z; 28 bits last thirty thousand years.
    const EPOCH_SECS: i64 = 1_577_836_800;
    const MAX_HOUR: i64 = (1 << (32 - STATUS_BITS)) - 1;

    /// A tag from a status index and a time.
    #[must_use]
    pub fn new(status: u32, t: DateTime<Utc>) -> u32 {
        debug_assert!(status <= STATUS_MASK);
        ((hour_of(t) as u32) << STATUS_BITS) | (status & STATUS_MASK)
    }

    /// The status index in a tag.
    #[must_use]
    pub fn status(tag: u32) -> u32 {
        tag & STATUS_MASK
    }

    /// The hour in a tag.
    #[must_use]
    pub fn hour(tag: u32) -> i64 {
        i64::from(tag >> STATUS_BITS)
    }

    /// The hour of a time, as tags count them (clamped to their range).
    #[must_use]
    pub fn hour_of(t: DateTime<Utc>) -> i64 {
        (t.timestamp() - EPOCH_SECS).div_euclid(3600).clamp(0, MAX_HOUR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Layer::properties` is the typed structs' list: each is known to the parser, and a
    /// property outside it is refused as unknown.
    #[test]
    fn each_layers_property_list_is_what_its_parser_takes() {
        for layer in Layer::ALL {
            for p in layer.properties() {
                let e = Props::parse(layer, json!({ *p: -1.5 })).unwrap_err();
                assert!(!e.reason.contains("unknown field"), "{layer}.{p}: {}", e.reason);
            }
            let e = Props::parse(layer, json!({"colour": "red"})).unwrap_err();
            assert!(e.reason.contains("unknown field") && e.field == "colour", "{layer}: {e:?}");
            for p in layer.properties() {
                assert!(e.reason.contains(&format!("`{p}`")), "{layer}: {p} missing from {}", e.reason);
            }
        }
    }
    use serde_json::json;

    #[test]
    fn unknown_and_missing_properties_are_named() {
        let e = Props::parse(Layer::Posts, json!({"kind": "police_room", "name": "x", "colour": "red"})).unwrap_err();
        assert_eq!(e.field, "colour");
        let e = Props::parse(Layer::Posts, json!({"kind": "police_room"})).unwrap_err();
        assert_eq!(e.field, "name");
        let e = Props::parse(
            Layer::Incidents,
            json!({"type": "theft", "priority": 9, "status": "open", "reported_at": "2026-11-01T00:00:00Z"}),
        )
        .unwrap_err();
        assert_eq!(e.field, "priority");
    }

    #[test]
    fn csv_style_strings_are_accepted_for_numbers_and_lists() {
        let p = Props::parse(
            Layer::Responders,
            json!({"kind": "patrol", "callsign": "P-1", "status": "available", "capabilities": "first_aid; fire", "home_post": "12"}),
        )
        .unwrap();
        assert_eq!(p.capabilities(), ["first_aid", "fire"]);
        assert_eq!(p.status(), "available");
        let Props::Responder(r) = p else { panic!() };
        assert_eq!(r.home_post, Some(12));
    }

    #[test]
    fn props_round_trip_through_json() {
        let p = Props::parse(
            Layer::RentalHousing,
            json!({"address": "福田区百花路1号", "units": 12, "tenant_count": 30, "safety_rating": "b", "last_inspection": "2026-10-01"}),
        )
        .unwrap();
        let back = Props::parse(Layer::RentalHousing, serde_json::Value::Object(p.to_json())).unwrap();
        assert_eq!(p, back);
        assert_eq!(p.status(), "b");
    }
}
