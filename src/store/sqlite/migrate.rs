//! SQLite's migrations: the shared list and ledger of [`crate::store::migrations`], each applied
//! in an immediate transaction, which keeps a second process out until it commits.

use chrono::Utc;
use health_actors::ports::StoreError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::codec::micros;
use super::sqlite_error;
use crate::store::migrations::SQLITE;

/// Applies each pending migration in its own immediate transaction (which also keeps a second
/// process out until it commits) and records it in the ledger.
pub(super) fn run(connection: &mut Connection) -> Result<Vec<String>, StoreError> {
    let mut applied = Vec::new();
    for migration in SQLITE.migrations {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        transaction
            .execute_batch(SQLITE.ledger.create)
            .map_err(sqlite_error)?;
        let done = transaction
            .query_row(SQLITE.ledger.recorded, [migration.version], |_| Ok(()))
            .optional()
            .map_err(sqlite_error)?
            .is_some();
        if !done {
            transaction
                .execute_batch(migration.sql)
                .map_err(sqlite_error)?;
            transaction
                .execute(
                    SQLITE.ledger.record,
                    params![migration.version, migration.name, micros(Utc::now())],
                )
                .map_err(sqlite_error)?;
            applied.push(migration.name.to_owned());
        }
        transaction.commit().map_err(sqlite_error)?;
        if !done {
            tracing::info!(migration = migration.name, "embedded migration applied");
        }
    }
    Ok(applied)
}
