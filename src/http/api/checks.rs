//! Checks of request fields that several routes share, each answering the [`ApiError`] that
//! names the field. A check that only one route needs stays beside that route.

use super::error::ApiError;

/// Text that is not blank and at most `max` characters as sent (the limits the document states
/// as `minLength`, `maxLength` and a pattern that needs one character that is not white space);
/// kept without the white space around it.
pub(super) fn check_text(field: &str, text: &str, max: usize) -> Result<String, ApiError> {
    if text.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    Ok(text.to_owned())
}
