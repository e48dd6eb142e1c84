//! `zeval user`: the users of the store, who may write objects. Also [`open_store`], how
//! every command that opens the store chooses its backend.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use zeval_store::{Role, Store};

/// Opens (migrating and seeding) the store of `database_url` (PostgreSQL, or `sqlite://PATH`),
/// else `<data_dir>/zeval.sqlite`, saying which in the error.
pub(crate) fn open_store(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Store> {
    Store::open_url(database_url, data_dir, true).with_context(|| match database_url {
        Some(url) if !url.is_empty() => {
            format!("opening the store at {}", zeval_store::redacted_url(url))
        }
        _ => format!("opening the store in {}", data_dir.display()),
    })
}

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
    /// The store's database instead of `<data-dir>/zeval.sqlite`: `postgres://…` or
    /// `sqlite://PATH`.
    #[arg(long, global = true, env = "ZEVAL_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
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
        let store = open_store(&self.data_dir, self.database_url.as_deref())?;
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
