//! Running MySQL's or MariaDB's client tools (`mysqldump`, `mysql`) against a server given
//! by its `mysql://` URL: host or socket, user, TLS settings as the URL's `ssl-*` parameters
//! say, spelled for the client family installed, and the password in an option file that
//! only this user can read (never on the command line or in the environment), read instead
//! of every other option file.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use crate::engine::redact_url;
use crate::error::{Error, Result};

/// Whose client tools are installed: their options differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Mariadb,
    Mysql,
}

impl Family {
    /// The family of `tool`, from what `--version` says.
    async fn of(tool: &str) -> Result<Family, String> {
        let output = Command::new(tool)
            .arg("--version")
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("cannot run {tool}: {e} (install the MySQL or MariaDB client)"))?;
        let said = String::from_utf8_lossy(&output.stdout);
        Ok(match said.contains("MariaDB") {
            true => Family::Mariadb,
            false => Family::Mysql,
        })
    }
}

/// How the client tools reach the server.
#[derive(Debug, Default)]
struct Login {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    socket: Option<String>,
    /// sqlx's `ssl-mode`: disabled, preferred, required, verify_ca, verify_identity.
    ssl_mode: Option<String>,
    /// `ssl-ca`, `ssl-cert`, `ssl-key`: file paths, given to the tools as they are.
    ssl_files: Vec<(&'static str, String)>,
}

impl Login {
    fn of(url: &str) -> Result<Login> {
        let parsed = url::Url::parse(url).map_err(|e| Error::UnsupportedUrl {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let host = parsed.host_str().unwrap_or("localhost");
        let mut login = Login {
            // An IPv6 address without its URL brackets.
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: parsed.port().unwrap_or(3306),
            user: decode(parsed.username()),
            password: parsed.password().map(decode),
            ..Login::default()
        };
        for (key, value) in parsed.query_pairs() {
            let value = value.into_owned();
            match key.as_ref() {
                "user" => login.user = value,
                "password" => login.password = Some(value),
                "socket" => login.socket = Some(value),
                "ssl-mode" | "sslmode" => login.ssl_mode = Some(value.to_ascii_lowercase()),
                "ssl-ca" => login.ssl_files.push(("ssl-ca", value)),
                "ssl-cert" => login.ssl_files.push(("ssl-cert", value)),
                "ssl-key" => login.ssl_files.push(("ssl-key", value)),
                _ => {}
            }
        }
        if let Some(bad) = [login.password.as_deref(), Some(login.user.as_str())]
            .into_iter()
            .flatten()
            .find(|v| v.chars().any(char::is_control))
        {
            let what = if Some(bad) == login.password.as_deref() {
                "password"
            } else {
                "user"
            };
            return Err(Error::UnsupportedUrl {
                url: redact_url(url),
                reason: format!(
                    "the {what} holds a control character, which the client tools' option files cannot carry"
                ),
            });
        }
        Ok(login)
    }

    /// The TLS options for `family`, as the URL asks.
    fn tls(&self, family: Family) -> Vec<String> {
        let mut args = Vec::new();
        match (self.ssl_mode.as_deref(), family) {
            (None | Some("preferred"), _) => {}
            (Some(mode), Family::Mysql) => {
                args.push(format!("--ssl-mode={}", mode.to_ascii_uppercase()))
            }
            (Some("disabled"), Family::Mariadb) => args.push("--skip-ssl".to_owned()),
            (Some("required"), Family::Mariadb) => args.push("--ssl".to_owned()),
            (Some(_), Family::Mariadb) => {
                args.push("--ssl".to_owned());
                args.push("--ssl-verify-server-cert".to_owned());
            }
        }
        for (option, path) in &self.ssl_files {
            args.push(format!("--{option}={path}"));
        }
        args
    }
}

/// An option file holding the password, removed when dropped.
pub(super) struct OptionFile(PathBuf);

impl OptionFile {
    fn write(login: &Login) -> std::io::Result<OptionFile> {
        let path = std::env::temp_dir().join(format!(
            "tenantry-{}.cnf",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        let guard = OptionFile(path);
        // Quoted, with `\` and `"` escaped; control characters were refused.
        let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        writeln!(file, "[client]")?;
        writeln!(file, "user={}", quote(&login.user))?;
        if let Some(password) = &login.password {
            writeln!(file, "password={}", quote(password))?;
        }
        file.sync_all()?;
        Ok(guard)
    }
}

impl Drop for OptionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `tool`'s command for the server at `url`, with the option file that carries the login
/// (kept until the command is done with), and the family of the tools installed.
/// `connect`: its connect timeout, where the tool has the option (`mysqldump` has not).
pub(super) async fn command(
    tool: &str,
    url: &str,
    connect: Option<Duration>,
) -> Result<(Command, OptionFile, Family), String> {
    let login = Login::of(url).map_err(|e| e.to_string())?;
    let family = Family::of(tool).await?;
    let options =
        OptionFile::write(&login).map_err(|e| format!("cannot write an option file: {e}"))?;
    let mut command = Command::new(tool);
    // The option file must come first; no other is read.
    command
        .arg(format!("--defaults-file={}", options.0.display()))
        .arg("--default-character-set=utf8mb4")
        .arg("--max-allowed-packet=1G")
        .args(login.tls(family));
    if let Some(connect) = connect {
        command.arg(format!("--connect-timeout={}", connect.as_secs().max(1)));
    }
    match &login.socket {
        Some(socket) => command.arg(format!("--socket={socket}")),
        None => command
            .arg("--protocol=TCP")
            .arg(format!("--host={}", login.host))
            .arg(format!("--port={}", login.port)),
    };
    command.kill_on_drop(true);
    Ok((command, options, family))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_comes_from_the_url_and_its_parameters() {
        let login = Login::of("mysql://admin:s%40cr%22et@db.example:3307/x").expect("url");
        assert_eq!(
            (login.host.as_str(), login.port, login.user.as_str()),
            ("db.example", 3307, "admin")
        );
        assert_eq!(login.password.as_deref(), Some("s@cr\"et"));
        let login =
            Login::of("mysql://root@localhost/x?socket=/run/m.sock&password=p%26w").expect("url");
        assert_eq!(login.socket.as_deref(), Some("/run/m.sock"));
        assert_eq!(login.password.as_deref(), Some("p&w"));
        let login = Login::of("mysql://root@[::1]:3306/x").expect("url");
        assert_eq!(login.host, "::1");
    }

    #[test]
    fn a_password_with_a_control_character_is_refused() {
        let err = Login::of("mysql://root:x%0Ahost%3Devil@h/x").expect_err("newline");
        assert!(
            matches!(&err, Error::UnsupportedUrl { reason, .. } if reason.contains("password")),
            "{err}"
        );
    }

    #[test]
    fn tls_is_spelled_for_each_client_family() {
        let login =
            Login::of("mysql://root@h/x?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ca.pem").expect("url");
        assert_eq!(
            login.tls(Family::Mariadb),
            ["--ssl", "--ssl-verify-server-cert", "--ssl-ca=/etc/ca.pem"]
        );
        assert_eq!(
            login.tls(Family::Mysql),
            ["--ssl-mode=VERIFY_IDENTITY", "--ssl-ca=/etc/ca.pem"]
        );
        let off = Login::of("mysql://root@h/x?ssl-mode=disabled").expect("url");
        assert_eq!(off.tls(Family::Mariadb), ["--skip-ssl"]);
        assert!(
            Login::of("mysql://root@h/x")
                .expect("url")
                .tls(Family::Mysql)
                .is_empty()
        );
    }

    #[test]
    fn the_option_file_is_private_and_goes_away() {
        let login = Login::of("mysql://root:a%5Cb%22c@h/x").expect("url");
        let file = OptionFile::write(&login).expect("write");
        let text = std::fs::read_to_string(&file.0).expect("read");
        assert_eq!(text, "[client]\nuser=\"root\"\npassword=\"a\\\\b\\\"c\"\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file.0)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let path = file.0.clone();
        drop(file);
        assert!(!path.exists());
    }
}
