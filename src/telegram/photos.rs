//! Pictures people send: checked (JPEG, PNG or WebP by their first bytes; at most 10 MB) and
//! kept as `<DATA_DIR>/photos/<user>/<uuid>.<ext>`.
//!
//! The checks read the bytes, not the name or the type Telegram reports, so a renamed file is
//! refused for what it is. A rejection's `Display` is what the person reads.

use std::path::{Path, PathBuf};

use uuid::Uuid;

/// The largest picture accepted.
pub const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    WebP,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::WebP => "webp",
        }
    }

    /// The format the bytes are in, from their magic number.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else {
            None
        }
    }
}

/// Why a picture was not taken; the text is what the person reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoRejection {
    #[error("That picture is {0} MB; I can take pictures up to 10 MB. Please send a smaller one.")]
    TooLarge(String),
    #[error("I can only read pictures (JPEG, PNG or WebP), and that file isn't one. Send the photo itself, or tell me in words what you ate.")]
    NotAnImage,
    #[error("I couldn't download that picture from Telegram. Please send it again.")]
    DownloadFailed,
    #[error("I couldn't save that picture. Please send it again in a moment.")]
    NotSaved,
}

/// "12.4" for a size in bytes.
pub fn megabytes(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Checks size and format.
pub fn validate(bytes: &[u8]) -> Result<ImageFormat, PhotoRejection> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(PhotoRejection::TooLarge(megabytes(bytes.len())));
    }
    ImageFormat::sniff(bytes).ok_or(PhotoRejection::NotAnImage)
}

/// Where a person's pictures live.
pub fn user_dir(photos_dir: &Path, user: i64) -> PathBuf {
    photos_dir.join(user.to_string())
}

/// Writes the picture as `<photos_dir>/<user>/<id>.<ext>` (written to a temporary name, then
/// renamed, so a half-written file never has the final name) and returns its path.
pub async fn store(
    photos_dir: &Path,
    user: i64,
    id: Uuid,
    format: ImageFormat,
    bytes: &[u8],
) -> std::io::Result<PathBuf> {
    let dir = user_dir(photos_dir, user);
    tokio::fs::create_dir_all(&dir).await?;
    let path = dir.join(format!("{id}.{}", format.extension()));
    let partial = dir.join(format!("{id}.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, &path).await?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognised_by_their_first_bytes() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(ImageFormat::WebP)
        );
        assert_eq!(ImageFormat::sniff(b"%PDF-1.7"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }

    #[test]
    fn large_or_unknown_files_are_refused_with_a_reason() {
        let big = vec![0xFF; MAX_PHOTO_BYTES + 1];
        assert_eq!(validate(&big), Err(PhotoRejection::TooLarge("10.0".into())));
        assert_eq!(validate(b"hello"), Err(PhotoRejection::NotAnImage));
        assert!(PhotoRejection::NotAnImage
            .to_string()
            .contains("JPEG, PNG or WebP"));
    }

    #[tokio::test]
    async fn pictures_are_stored_under_the_person() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::now_v7();
        let path = store(dir.path(), 42, id, ImageFormat::Png, b"\x89PNG\r\n\x1a\n")
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("42").join(format!("{id}.png")));
        assert!(path.exists());
        assert!(!dir.path().join("42").join(format!("{id}.partial")).exists());
    }
}
