//! PostgreSQL's migrations: the shared list and ledger of [`crate::store::migrations`], applied
//! under an advisory lock so that processes starting at once apply each migration once.

use health_actors::ports::StoreError;

use super::db_error;
use crate::store::migrations::POSTGRES;

/// Serialises migrations of concurrent starts (`pg_advisory_xact_lock`; per database).
/// The bytes spell "hlthmigr".
const MIGRATION_LOCK_KEY: i64 = 0x686c_7468_6d69_6772;

/// Applies each pending migration in its own transaction, under a transaction-scoped advisory
/// lock, so two processes starting at once apply each migration once, one after the other.
pub(super) async fn run(client: &mut deadpool_postgres::Client) -> Result<Vec<String>, StoreError> {
    let mut applied = Vec::new();
    for migration in POSTGRES.migrations {
        let transaction = client.transaction().await.map_err(db_error)?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(db_error)?;
        transaction
            .batch_execute(POSTGRES.ledger.create)
            .await
            .map_err(db_error)?;
        let done = transaction
            .query_opt(POSTGRES.ledger.recorded, &[&migration.version])
            .await
            .map_err(db_error)?
            .is_some();
        if !done {
            transaction
                .batch_execute(migration.sql)
                .await
                .map_err(|error| {
                    let error = db_error(error);
                    tracing::error!(migration = migration.name, %error, "migration failed");
                    error
                })?;
            transaction
                .execute(
                    POSTGRES.ledger.record,
                    &[&migration.version, &migration.name],
                )
                .await
                .map_err(db_error)?;
            applied.push(migration.name.to_owned());
        }
        transaction.commit().await.map_err(db_error)?;
        if !done {
            tracing::info!(migration = migration.name, "migration applied");
        }
    }
    Ok(applied)
}
