//! `zeval user`: the users of the embedded store, who may write objects.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use zeval_store::{Role, SqliteStore};

/// Manage users (who hold bearer tokens for writes).
#[derive(clap::Args)]
pub(crate) struct UserCommand {
    #[command(subcommand)]
    action: UserAction,
    /// The data directory holding the store.
    #[arg(
        long,
        global = true,
        env = "ZEVAL_DATA_DIR",
        default_value = "./zeval-data"
    )]
    data_dir: PathBuf,
}

#[derive(clap::Subcommand)]
enum UserAction {
    /// Add a user and print their new bearer token (shown only this once; only its hash is
    /// stored).
    Add {
        /// The user's unique name.
        name: String,
        /// `editor` writes objects; `admin` also approves implementations.
        #[arg(long, value_parser = ["editor", "admin"], default_value = "editor")]
        role: String,
    },
    /// List users and their roles.
    List,
}

impl UserCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let store = SqliteStore::open_seeded(&self.data_dir)
            .with_context(|| format!("opening the store in {}", self.data_dir.display()))?;
        match self.action {
            UserAction::Add { name, role } => {
                let role: Role = role.parse()?;
                let token = store.add_user(&name, role)?;
                eprintln!("added {role} {name}; their token (shown only now):");
                println!("{token}");
            }
            UserAction::List => {
                for user in store.users()? {
                    println!("{}\t{}", user.name, user.role);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
