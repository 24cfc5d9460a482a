//! Running a client tool (`pg_dump`, `mysql`, …) against a server that may go silent: the
//! tool's own reads have no deadline, so its progress is watched from outside (the input it
//! takes, the file it writes) and it is killed once it makes none for a while.
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use tokio::task::JoinHandle;

/// How long a running tool may make no progress before its server is taken for gone. A
/// live one streams rows, so it never pauses this long; its lock waits are bounded by the
/// tool's own options, well under it.
pub(crate) const SILENCE: Duration = Duration::from_secs(300);

/// Writes `input` to the standard input of `child` (a `tool`) and waits for it to end. It
/// may go `silence` without taking input, and `finish` (if given) to end once it has it
/// all; past either it is killed. In `Err`, what it said or why it was stopped.
pub(crate) async fn feed(
    tool: &str,
    mut child: Child,
    mut input: impl AsyncRead + Unpin,
    silence: Duration,
    finish: Option<Duration>,
) -> Result<(), String> {
    let (Some(mut stdin), Some(said)) = (child.stdin.take(), collect_errors(&mut child)) else {
        return Err(format!("{tool}'s input was not piped"));
    };
    let silent = || {
        format!(
            "{tool} took no input for {} s: the server went silent",
            silence.as_secs()
        )
    };
    let fed = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = input
                .read(&mut buf)
                .await
                .map_err(|e| format!("cannot read the dump: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            match tokio::time::timeout(silence, stdin.write_all(&buf[..n])).await {
                Err(_) => return Err(silent()),
                // It stopped reading: it has ended, and says why below.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Ok(Err(e)) => return Err(format!("cannot write to {tool}: {e}")),
                Ok(Ok(())) => {}
            }
        }
    }
    .await;
    // Closed, its input ends.
    drop(stdin);
    let ended = match (fed, finish) {
        (Ok(()), Some(finish)) => tokio::time::timeout(finish, child.wait())
            .await
            .map_err(|_| {
                format!(
                    "{tool} did not finish within {} s of its last input: the server went silent",
                    finish.as_secs()
                )
            }),
        (Ok(()), None) => Ok(child.wait().await),
        (Err(e), _) => Err(e),
    };
    let status = match ended {
        Ok(status) => status.map_err(|e| format!("{tool} did not finish: {e}"))?,
        Err(e) => {
            let _ = child.kill().await;
            return Err(e);
        }
    };
    outcome(tool, status, said).await
}

/// Waits for `child` (a `tool` writing `file`) to end, in `Err` what it said. While the file
/// grows, it may run as long as it needs; once the file has not changed size for
/// `silence` (nor been created), it is killed.
pub(crate) async fn watch_file(
    tool: &str,
    mut child: Child,
    file: &Path,
    silence: Duration,
) -> Result<(), String> {
    let Some(said) = collect_errors(&mut child) else {
        return Err(format!("{tool}'s errors were not piped"));
    };
    let size = || std::fs::metadata(file).map(|m| m.len()).ok();
    let mut seen = size();
    let mut since = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(POLL.min(silence));
    let status = loop {
        tokio::select! {
            status = child.wait() => {
                break status.map_err(|e| format!("{tool} did not finish: {e}"))?;
            }
            _ = tick.tick() => {
                let now = size();
                if now != seen {
                    seen = now;
                    since = tokio::time::Instant::now();
                } else if since.elapsed() >= silence {
                    let _ = child.kill().await;
                    return Err(format!(
                        "{tool} wrote nothing for {} s: the server went silent",
                        silence.as_secs()
                    ));
                }
            }
        }
    };
    outcome(tool, status, said).await
}

/// Everything `child` writes to its (piped) error stream, read to its end beside it.
pub(crate) fn collect_errors(child: &mut Child) -> Option<JoinHandle<Vec<u8>>> {
    let mut err = child.stderr.take()?;
    Some(tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = err.read_to_end(&mut text).await;
        text
    }))
}

/// A finished `tool`'s outcome: `Ok` if it succeeded, else its `status` and what it `said`.
pub(crate) async fn outcome(
    tool: &str,
    status: ExitStatus,
    said: JoinHandle<Vec<u8>>,
) -> Result<(), String> {
    if status.success() {
        return Ok(());
    }
    let said = said.await.unwrap_or_default();
    Err(format!(
        "{tool} failed ({status}): {}",
        String::from_utf8_lossy(&said).trim()
    ))
}

/// How often a written file's size is looked at.
const POLL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;

    /// `sh -c script`, its input piped, killed if the test ends first.
    fn shell(script: &str) -> Child {
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sh")
    }

    /// More than a pipe holds.
    fn big() -> &'static [u8] {
        Box::leak(vec![b'x'; 1 << 20].into_boxed_slice())
    }

    const BRIEF: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_tool_that_stops_reading_is_killed_after_the_silence() {
        let child = shell("exec sleep 600");
        let pid = child.id().expect("pid");
        let said = feed("mysql", child, big(), BRIEF, Some(BRIEF))
            .await
            .expect_err("silent");
        assert!(said.contains("took no input for 1 s"), "{said}");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "still running"
        );
    }

    #[tokio::test]
    async fn a_tool_that_never_finishes_is_killed_after_the_silence() {
        let child = shell("cat > /dev/null; exec sleep 600");
        let pid = child.id().expect("pid");
        let said = feed("mysql", child, &b"SELECT 1;\n"[..], BRIEF, Some(BRIEF))
            .await
            .expect_err("silent");
        assert!(said.contains("did not finish within 1 s"), "{said}");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "still running"
        );
    }

    #[tokio::test]
    async fn a_tool_that_fails_early_says_why() {
        let child = shell("echo 'ERROR 1064 at line 1' >&2; exit 1");
        let said = feed("mysql", child, big(), BRIEF, Some(BRIEF))
            .await
            .expect_err("failed");
        assert!(said.starts_with("mysql failed"), "{said}");
        assert!(said.contains("ERROR 1064 at line 1"), "{said}");
    }

    #[tokio::test]
    async fn a_tool_that_writes_nothing_is_killed_after_the_silence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dump");
        let child = shell(&format!(
            "echo started > '{}'; exec sleep 600",
            file.display()
        ));
        let pid = child.id().expect("pid");
        let said = watch_file("pg_dump", child, &file, BRIEF)
            .await
            .expect_err("silent");
        assert!(said.contains("wrote nothing for 1 s"), "{said}");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "still running"
        );
    }

    #[tokio::test]
    async fn a_tool_writing_steadily_runs_past_the_silence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dump");
        let script = format!(
            "for i in 1 2 3 4 5 6; do echo $i >> '{}'; sleep 0.5; done",
            file.display()
        );
        watch_file("pg_dump", shell(&script), &file, BRIEF)
            .await
            .expect("ran to its end");
        assert_eq!(
            std::fs::read_to_string(&file)
                .expect("read")
                .lines()
                .count(),
            6
        );
    }

    #[tokio::test]
    async fn a_failed_tool_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = shell("echo 'pg_dump: error: connection refused' >&2; exit 1");
        let said = watch_file("pg_dump", child, &dir.path().join("dump"), BRIEF)
            .await
            .expect_err("failed");
        assert!(said.starts_with("pg_dump failed"), "{said}");
        assert!(said.contains("connection refused"), "{said}");
    }

    #[tokio::test]
    async fn a_tool_that_takes_everything_succeeds() {
        let child = shell("test \"$(wc -c)\" -eq 1048576");
        feed("mysql", child, big(), BRIEF, Some(BRIEF))
            .await
            .expect("fed");
    }
}
