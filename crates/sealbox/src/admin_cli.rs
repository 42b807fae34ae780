//! `sealbox admin ...`: users, access keys and user policies, through the server's IAM API (the
//! same calls `aws iam --endpoint-url` makes), signed with the caller's (normally root) keys.

use anyhow::Context;
use sealbox_auth::SecretAccessKey;

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:9000", global = true)]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", global = true, default_value = "")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, global = true, default_value = "")]
    pub secret_key: SecretAccessKey,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    CreateUser {
        name: String,
    },
    DeleteUser {
        name: String,
    },
    ListUsers,
    /// Prints the new key's id and secret (shown once).
    CreateAccessKey {
        user: String,
    },
    DeleteAccessKey {
        user: String,
        access_key_id: String,
    },
    ListAccessKeys {
        user: String,
    },
    /// Attach an inline policy from a JSON file.
    PutUserPolicy {
        user: String,
        policy_name: String,
        file: std::path::PathBuf,
    },
    GetUserPolicy {
        user: String,
        policy_name: String,
    },
    DeleteUserPolicy {
        user: String,
        policy_name: String,
    },
    ListUserPolicies {
        user: String,
    },
}

fn form(cmd: &AdminCommand) -> anyhow::Result<Vec<(&'static str, String)>> {
    use AdminCommand::*;
    Ok(match cmd {
        CreateUser { name } => vec![("Action", "CreateUser".into()), ("UserName", name.clone())],
        DeleteUser { name } => vec![("Action", "DeleteUser".into()), ("UserName", name.clone())],
        ListUsers => vec![("Action", "ListUsers".into())],
        CreateAccessKey { user } => vec![("Action", "CreateAccessKey".into()), ("UserName", user.clone())],
        DeleteAccessKey { user, access_key_id } => {
            vec![
                ("Action", "DeleteAccessKey".into()),
                ("UserName", user.clone()),
                ("AccessKeyId", access_key_id.clone()),
            ]
        }
        ListAccessKeys { user } => vec![("Action", "ListAccessKeys".into()), ("UserName", user.clone())],
        PutUserPolicy { user, policy_name, file } => vec![
            ("Action", "PutUserPolicy".into()),
            ("UserName", user.clone()),
            ("PolicyName", policy_name.clone()),
            (
                "PolicyDocument",
                std::fs::read_to_string(file).with_context(|| format!("while reading {}", file.display()))?,
            ),
        ],
        GetUserPolicy { user, policy_name } => {
            vec![("Action", "GetUserPolicy".into()), ("UserName", user.clone()), ("PolicyName", policy_name.clone())]
        }
        DeleteUserPolicy { user, policy_name } => {
            vec![("Action", "DeleteUserPolicy".into()), ("UserName", user.clone()), ("PolicyName", policy_name.clone())]
        }
        ListUserPolicies { user } => vec![("Action", "ListUserPolicies".into()), ("UserName", user.clone())],
    })
}

pub async fn run(args: AdminArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        !args.access_key.is_empty() && !args.secret_key.expose().is_empty(),
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or --access-key/--secret-key)"
    );
    let mut pairs = form(&args.command)?;
    pairs.push(("Version", "2010-05-08".into()));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let (status, text) = crate::signing::send(crate::signing::SignedCall {
        endpoint: &args.endpoint,
        access_key_id: &args.access_key,
        secret: &args.secret_key,
        service: "iam",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
        body: body.into(),
    })
    .await
    .context("IAM call")?;
    println!("{}", String::from_utf8_lossy(&text));
    Ok(if status.is_success() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let cli =
            Cli::parse_from(["sealbox", "--access-key", "AK", "--secret-key", "wJalrXUtnFEMI-secret", "list-users"]);
        let shown = format!("{cli:?}");
        assert!(!shown.contains("wJalrXUtnFEMI-secret"), "{shown}");
        assert_eq!(cli.admin.secret_key.expose(), "wJalrXUtnFEMI-secret");
    }
}
