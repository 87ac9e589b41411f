//! The Socket.IO admin UI's settings (`@socket.io/admin-ui`): whether the `/admin` namespace is
//! served, who may join it, and what it shows. README's "Admin UI" section says how to use them.

use super::Secret;

/// Whether the `/admin` namespace is served, and how it is protected (`HUB_ADMIN`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminSwitch {
    /// Not served: a CONNECT to `/admin` gets `Invalid namespace`, as any unknown namespace.
    #[default]
    Off,
    /// Served to clients that present `HUB_ADMIN_USERNAME` and the password of
    /// `HUB_ADMIN_PASSWORD_HASH` (the package's `auth: {type: "basic"}`).
    On,
    /// Served to anyone who can reach the hub (the package's `auth: false`): only on a network
    /// where every client is trusted.
    OnWithoutAuth,
}

/// How much the admin UI is shown (`HUB_ADMIN_MODE`, the package's `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminMode {
    /// Server statistics only (`server_stats`, aggregated events).
    #[default]
    Production,
    /// Also the list of this instance's sockets and their connects and disconnects, live.
    Development,
}

/// The admin UI settings of [`super::Config`] (flattened into it: the same flags and variables).
#[derive(Debug, Clone, clap::Args)]
pub struct Admin {
    /// Serve the Socket.IO admin UI's `/admin` namespace: `off`, `on` (needs HUB_ADMIN_USERNAME
    /// and HUB_ADMIN_PASSWORD_HASH), or `on-without-auth` (anyone who can reach the hub)
    #[arg(
        long,
        env = "HUB_ADMIN",
        value_enum,
        default_value = "off",
        value_name = "SWITCH"
    )]
    pub admin: AdminSwitch,
    /// The user name the admin UI must present (`HUB_ADMIN=on`)
    #[arg(long, env = "HUB_ADMIN_USERNAME", value_name = "NAME")]
    pub admin_username: Option<String>,
    /// The bcrypt hash (`$2a$`, `$2b$` or `$2y$`, 60 characters) of the password the admin UI must
    /// present (`HUB_ADMIN=on`), e.g. from `htpasswd -bnBC 10 "" PASSWORD | tr -d ':\n'`
    #[arg(long, env = "HUB_ADMIN_PASSWORD_HASH", hide_env_values = true, value_name = "HASH",
          value_parser = bcrypt_hash)]
    pub admin_password_hash: Option<Secret>,
    /// What the admin UI shows: `production` (server statistics) or `development` (also this
    /// instance's sockets, live)
    #[arg(
        long,
        env = "HUB_ADMIN_MODE",
        value_enum,
        default_value = "production",
        value_name = "MODE"
    )]
    pub admin_mode: AdminMode,
    /// Whether the admin UI may act (emit to, disconnect sockets): `true` or `false`; unset: read-only
    /// in production mode, not in development mode
    #[arg(long, env = "HUB_ADMIN_READONLY", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub admin_readonly: Option<bool>,
    /// The name this instance has in the admin UI; unset: `<hostname>#<pid>`
    #[arg(long, env = "HUB_ADMIN_SERVER_ID", value_name = "ID")]
    pub admin_server_id: Option<String>,
}

impl Admin {
    /// Whether the admin UI may only watch (`HUB_ADMIN_READONLY`, by default per mode).
    pub fn readonly(&self) -> bool {
        self.admin_readonly
            .unwrap_or(self.admin_mode == AdminMode::Production)
    }

    /// The settings that must go together: `on` needs both credentials; credentials without `on`
    /// would suggest a protection that is not there (the namespace is off, or open).
    pub fn check(&self) -> Result<(), String> {
        let credentials = self.admin_username.is_some() || self.admin_password_hash.is_some();
        match self.admin {
            AdminSwitch::On
                if self.admin_username.is_none() || self.admin_password_hash.is_none() =>
            {
                Err("HUB_ADMIN=on needs HUB_ADMIN_USERNAME and HUB_ADMIN_PASSWORD_HASH".into())
            }
            AdminSwitch::Off | AdminSwitch::OnWithoutAuth if credentials => Err(format!(
                "HUB_ADMIN_USERNAME / HUB_ADMIN_PASSWORD_HASH are set but HUB_ADMIN is {}; \
                 set HUB_ADMIN=on to require them",
                if self.admin == AdminSwitch::Off {
                    "off"
                } else {
                    "on-without-auth"
                }
            )),
            _ => Ok(()),
        }
    }
}

/// `realtime-hub admin-hash [--cost 10] < password-file`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminHashRequest {
    /// bcrypt's cost (work factor, 4 to 31): each check takes 2^cost rounds; 10 takes ~0.1 s
    #[arg(long, default_value = "10", value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}

/// A bcrypt hash the `bcrypt` crate verifies against: `$2a$`, `$2b$` or `$2y$`, a cost of 4 to 31,
/// 60 characters in all. `$2x$` (hashes of a buggy implementation) is refused.
fn bcrypt_hash(value: &str) -> Result<Secret, String> {
    let parts: bcrypt::HashParts = value
        .parse()
        .map_err(|err| format!("expected a bcrypt hash ($2b$10$…, 60 characters): {err}"))?;
    if value.starts_with("$2x$") {
        return Err("$2x$ hashes are not accepted: hash the password again ($2b$)".into());
    }
    if !(4..=31).contains(&parts.get_cost()) {
        return Err("expected a bcrypt cost between 4 and 31".into());
    }
    Ok(Secret::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_are_checked_at_startup() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let hash = hash.as_str();
        assert_eq!(bcrypt_hash(hash).unwrap().expose(), hash);
        for version in ["$2a$", "$2y$"] {
            assert!(bcrypt_hash(&hash.replacen("$2b$", version, 1)).is_ok());
        }
        assert!(bcrypt_hash(&hash.replacen("$2b$", "$2x$", 1)).is_err());
        assert!(bcrypt_hash(&hash.replacen("$2b$", "$1a$", 1)).is_err());
        assert!(bcrypt_hash(&hash.replacen("$04$", "$03$", 1)).is_err());
        assert!(bcrypt_hash("pw").is_err());
        assert!(bcrypt_hash(&hash[..59]).is_err());
    }

    #[test]
    fn on_needs_both_credentials_and_credentials_need_on() {
        const HASH: &str = "$2b$04$0123456789012345678901uabcdefghijklmnopqrstuvwxyzABCD";
        let admin = |switch, user: Option<&str>, hash: Option<&str>| Admin {
            admin: switch,
            admin_username: user.map(str::to_owned),
            admin_password_hash: hash.map(Secret::from),
            admin_mode: AdminMode::Production,
            admin_readonly: None,
            admin_server_id: None,
        };
        assert!(admin(AdminSwitch::Off, None, None).check().is_ok());
        assert!(admin(AdminSwitch::OnWithoutAuth, None, None)
            .check()
            .is_ok());
        assert!(admin(AdminSwitch::On, Some("a"), Some(HASH))
            .check()
            .is_ok());
        assert!(admin(AdminSwitch::On, Some("a"), None).check().is_err());
        assert!(admin(AdminSwitch::On, None, Some(HASH)).check().is_err());
        assert!(admin(AdminSwitch::Off, Some("a"), Some(HASH))
            .check()
            .is_err());
        assert!(admin(AdminSwitch::OnWithoutAuth, None, Some(HASH))
            .check()
            .is_err());
        let mut dev = admin(AdminSwitch::OnWithoutAuth, None, None);
        assert!(dev.readonly(), "production mode is read-only by default");
        dev.admin_mode = AdminMode::Development;
        assert!(!dev.readonly());
        dev.admin_readonly = Some(true);
        assert!(dev.readonly());
    }
}
