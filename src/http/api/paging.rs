//! Pages of a list route: `limit` and `cursor` in the query, `next_cursor` in the answer.
//!
//! A cursor names the last item of the previous page by its time and id (a unique, stable key),
//! so a page never repeats or skips an item when items are added or removed between requests.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ApiError;

/// The most items a page may hold.
const PAGE_MAX: usize = 200;

/// The query of a list route that has nothing but paging.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The page size asked for (`default` when none was), or why it cannot be used.
pub(super) fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=PAGE_MAX).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::field(
            "limit",
            format!("must be between 1 and {PAGE_MAX}"),
        )),
    }
}

/// Which way a list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    OldestFirst,
    NewestFirst,
}

/// The page of `items` that follows `cursor` (the first page without one), at most `limit`
/// long, with the list sorted in `order` by `key`; and the cursor of the next page when more
/// items follow.
pub(super) fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    order: Order,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let after = cursor.map(decode_cursor).transpose()?;
    match order {
        Order::OldestFirst => items.sort_by_key(|item| key(item)),
        Order::NewestFirst => items.sort_by_key(|item| std::cmp::Reverse(key(item))),
    }
    let start = match (after, order) {
        (None, _) => 0,
        (Some(after), Order::OldestFirst) => items.partition_point(|item| key(item) <= after),
        (Some(after), Order::NewestFirst) => items.partition_point(|item| key(item) >= after),
    };
    let more = start.saturating_add(limit) < items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next_cursor = more
        .then(|| page.last().map(|item| encode_cursor(key(item))))
        .flatten();
    Ok((page, next_cursor))
}

/// Where the next page starts: after this (time, id).
fn encode_cursor((at, id): (DateTime<Utc>, Uuid)) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

/// The inverse of [`encode_cursor`], exactly as strict as the pattern the document states
/// (`^[0-9]{1,16}_[0-9a-f]{32}$`).
fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::field("cursor", "is not a cursor this API gave out");
    let (micros, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let shaped = (1..=16).contains(&micros.len())
        && micros.bytes().all(|b| b.is_ascii_digit())
        && id.len() == 32
        && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !shaped {
        return Err(invalid());
    }
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor((at, id))).unwrap(), (at, id));
        assert!(decode_cursor("nonsense").is_err());
        assert!(decode_cursor("12_notauuid").is_err());
        assert!(decode_cursor(&format!("12345678901234567_{}", id.simple())).is_err());
    }

    /// Items at seconds 1..=n, the id telling them apart when two share a time.
    fn items(n: i64) -> Vec<(DateTime<Utc>, Uuid)> {
        (1..=n)
            .map(|second| {
                (
                    DateTime::from_timestamp(second / 2, 0).unwrap(),
                    Uuid::from_u128(second as u128),
                )
            })
            .collect()
    }

    /// Every page, following the cursors from the first.
    fn walk(order: Order, limit: usize) -> Vec<Vec<u128>> {
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) =
                page(items(7), |item| *item, order, cursor.as_deref(), limit).expect("a page");
            pages.push(page.iter().map(|(_, id)| id.as_u128()).collect());
            match next {
                Some(next) => cursor = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_follow_each_other_both_ways_without_repeats_or_gaps() {
        assert_eq!(
            walk(Order::OldestFirst, 3),
            [vec![1, 2, 3], vec![4, 5, 6], vec![7]]
        );
        assert_eq!(
            walk(Order::NewestFirst, 3),
            [vec![7, 6, 5], vec![4, 3, 2], vec![1]]
        );
        // A last page that is exactly full has no next cursor.
        assert_eq!(walk(Order::OldestFirst, 7), [vec![1, 2, 3, 4, 5, 6, 7]]);
    }

    #[test]
    fn limits_outside_one_to_two_hundred_are_refused() {
        assert_eq!(page_limit(None, 50).unwrap(), 50);
        assert_eq!(page_limit(Some(200), 50).unwrap(), 200);
        assert!(page_limit(Some(0), 50).is_err());
        assert!(page_limit(Some(201), 50).is_err());
    }
}
