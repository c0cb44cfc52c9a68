//! `COMMAND --flag VALUE ...`: the argument shape of the test tools (`jvpn-attach`,
//! `jvpn-flood`), with error messages that name the flag and the command.

use std::collections::BTreeMap;
use std::str::FromStr;

/// A command and its `--flag value` pairs (a later flag overrides an earlier one).
#[derive(Debug)]
pub struct ToolArgs<'a> {
    /// The first argument.
    pub command: &'a str,
    values: BTreeMap<&'a str, &'a str>,
}

impl<'a> ToolArgs<'a> {
    /// Splits `args` (without the program name). Errors: no command, or a flag without value.
    pub fn parse(args: &'a [String]) -> Result<Self, String> {
        let (command, rest) = args.split_first().ok_or("missing command")?;
        let mut values = BTreeMap::new();
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            values.insert(flag.as_str(), value.as_str());
        }
        Ok(Self { command, values })
    }

    /// The value of `flag`, which the command needs.
    pub fn get(&self, flag: &str) -> Result<&'a str, String> {
        self.values
            .get(flag)
            .copied()
            .ok_or_else(|| format!("{} needs {flag}", self.command))
    }

    /// The value of `flag` parsed as `T`; the command needs it.
    pub fn parsed<T: FromStr>(&self, flag: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        self.get(flag)?
            .parse()
            .map_err(|e: T::Err| format!("{flag}: {e}"))
    }

    /// The number given with `flag`, or `default` (`None`: the command needs it).
    pub fn number(&self, flag: &str, default: Option<u64>) -> Result<u64, String> {
        match self.values.get(flag) {
            Some(v) => v.parse::<u64>().map_err(|e| format!("{flag}: {e}")),
            None => default.ok_or_else(|| format!("{} needs {flag}", self.command)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn flags_numbers_and_defaults_parse_and_missing_ones_name_the_command() {
        let args = strings(&["run", "--seed", "7", "--to", "10.0.0.1:9"]);
        let parsed = ToolArgs::parse(&args).unwrap();

        assert_eq!(parsed.command, "run");
        assert_eq!(parsed.number("--seed", None), Ok(7));
        assert_eq!(parsed.number("--rate", Some(3)), Ok(3));
        assert_eq!(
            parsed.parsed::<std::net::SocketAddr>("--to"),
            Ok("10.0.0.1:9".parse().unwrap())
        );
        assert_eq!(parsed.get("--hex"), Err("run needs --hex".to_owned()));
        assert!(ToolArgs::parse(&strings(&["run", "--seed"])).is_err());
    }
}
