//! Process limits a media run depends on.

use std::io;

/// Raise RLIMIT_NOFILE's soft limit to the hard limit; returns (soft, hard) after.
///
/// Every media stream holds one or two sockets, so a few thousand calls exceed the
/// usual soft limit of 1,024 long before anything else runs out. An unlimited hard
/// limit cannot be the soft one (the kernel caps descriptors at fs.nr_open): then the
/// soft limit goes as high as nr_open allows.
pub fn raise_nofile() -> io::Result<(u64, u64)> {
    let (soft, hard) = get_nofile()?;
    if soft < hard
        && set_nofile(hard, hard).is_err()
        && hard == libc::RLIM_INFINITY
        && let Some(cap) = nr_open()
    {
        set_nofile(cap.min(hard), hard)?;
    }
    get_nofile()
}

fn get_nofile() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit from `lim`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_reaches_hard() {
        let (soft, hard) = raise_nofile().unwrap();
        eprintln!("RLIMIT_NOFILE now {soft} / {hard}");
        if hard == libc::RLIM_INFINITY {
            assert!(soft >= 1_024);
        } else {
            assert_eq!(soft, hard);
        }
        // Idempotent.
        assert_eq!(raise_nofile().unwrap(), (soft, hard));
    }
}
