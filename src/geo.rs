//! Time zone from coordinates, offline: a shared location becomes an IANA zone name.
//!
//! The zone boundaries are compiled into the binary (`tzf-rs` with its bundled data), so no
//! service is asked where the person is. The finder takes about a second to build, so it is
//! built once, on the first lookup.

use std::sync::OnceLock;

use tzf_rs::DefaultFinder;

fn finder() -> &'static DefaultFinder {
    static FINDER: OnceLock<DefaultFinder> = OnceLock::new();
    FINDER.get_or_init(DefaultFinder::new)
}

/// The zone at `latitude`, `longitude` when it is one chrono-tz knows (not the open-sea
/// `Etc/GMT±N` zones, which do not follow any country's daylight saving); `None` otherwise.
pub fn timezone_at(latitude: f64, longitude: f64) -> Option<chrono_tz::Tz> {
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return None;
    }
    let name = finder().get_tz_name(longitude, latitude);
    if name.is_empty() || name.starts_with("Etc/") {
        return None;
    }
    name.parse().ok()
}

/// Looks the zone up on a blocking thread (the first lookup builds the finder).
pub async fn timezone_at_async(latitude: f64, longitude: f64) -> Option<chrono_tz::Tz> {
    tokio::task::spawn_blocking(move || timezone_at(latitude, longitude))
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cities_map_to_their_zones() {
        assert_eq!(timezone_at(48.8566, 2.3522), Some(chrono_tz::Europe::Paris));
        assert_eq!(
            timezone_at(40.7128, -74.0060),
            Some(chrono_tz::America::New_York)
        );
        assert_eq!(
            timezone_at(-33.8688, 151.2093),
            Some(chrono_tz::Australia::Sydney)
        );
        assert_eq!(timezone_at(35.6762, 139.6503), Some(chrono_tz::Asia::Tokyo));
    }

    #[test]
    fn the_open_sea_and_nonsense_have_no_zone() {
        assert_eq!(timezone_at(0.0, -140.0), None);
        assert_eq!(timezone_at(95.0, 0.0), None);
    }
}
