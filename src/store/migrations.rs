//! The schema's migrations and the ledger that records them, shared by both stores.
//!
//! The migration files are the one source of the list: `build.rs` lists `sql/migrations/`
//! (PostgreSQL; the same folder serves as `docker-entrypoint-initdb.d`, so its statements are
//! idempotent) and `sql/sqlite/`, and generates [`POSTGRES`]'s and [`SQLITE`]'s migrations with
//! each file embedded. Adding a numbered file is all a new migration needs.
//!
//! The ledger is the table `schema_migrations (version, name, applied_at)`, one row per applied
//! version, the same table every deployed database already has. Each store's `migrate` module
//! walks [`Schema::migrations`] in order and, per migration, in one transaction that keeps a
//! second process out (PostgreSQL: an advisory lock; SQLite: `BEGIN IMMEDIATE`), creates the
//! ledger if needed, skips a version it records, otherwise runs the file and records it.
//! Versions are checked one by one, not against the highest, so a lower number merged later
//! still runs.

/// One numbered schema change, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: i32,
    /// The file name without ".sql", e.g. "0001_initial".
    pub name: &'static str,
    pub sql: &'static str,
}

/// The ledger's statements in one SQL dialect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ledger {
    /// Creates `schema_migrations` if it is not there.
    pub create: &'static str,
    /// One parameter, the version; a row when it is applied.
    pub recorded: &'static str,
    /// Records a version as applied: (version, name) on PostgreSQL, (version, name, applied_at
    /// in microseconds) on SQLite.
    pub record: &'static str,
}

/// A store's migrations and the ledger statements of its dialect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema {
    pub migrations: &'static [Migration],
    pub ledger: Ledger,
}

// Defines POSTGRES_MIGRATIONS and SQLITE_MIGRATIONS from the folders.
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// PostgreSQL's schema (`sql/migrations/`).
pub(crate) const POSTGRES: Schema = Schema {
    migrations: POSTGRES_MIGRATIONS,
    ledger: Ledger {
        create: "CREATE TABLE IF NOT EXISTS schema_migrations (\
            version integer PRIMARY KEY, name text NOT NULL, \
            applied_at timestamptz NOT NULL DEFAULT now())",
        recorded: "SELECT 1 FROM schema_migrations WHERE version = $1",
        record: "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
    },
};

/// SQLite's schema (`sql/sqlite/`).
pub(crate) const SQLITE: Schema = Schema {
    migrations: SQLITE_MIGRATIONS,
    ledger: Ledger {
        create: "CREATE TABLE IF NOT EXISTS schema_migrations (\
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        recorded: "SELECT 1 FROM schema_migrations WHERE version = ?1",
        record: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in a migrations folder is in its list (in order), and nothing else.
    #[test]
    fn migration_lists_match_the_folders() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (folder, schema) in [("sql/migrations", POSTGRES), ("sql/sqlite", SQLITE)] {
            let mut files: Vec<String> = std::fs::read_dir(root.join(folder))
                .expect("migrations folder")
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".sql"))
                .collect();
            files.sort();
            let listed: Vec<String> = schema
                .migrations
                .iter()
                .map(|migration| format!("{}.sql", migration.name))
                .collect();
            assert_eq!(files, listed, "{folder}");
            // Numbers only grow; a gap is allowed (numbers are reserved per branch, and the
            // ledger records each version on its own, so a lower one merged later still runs).
            let mut previous = 0;
            for migration in schema.migrations {
                let number: i32 = migration.name[..4].parse().expect("numbered file");
                assert_eq!(number, migration.version);
                assert!(migration.version > previous, "{}", migration.name);
                previous = migration.version;
            }
            for (migration, file) in schema.migrations.iter().zip(&files) {
                let text = std::fs::read_to_string(root.join(folder).join(file))
                    .expect("a readable migration");
                assert_eq!(migration.sql, text, "{file} is embedded as it is");
            }
        }
    }
}
