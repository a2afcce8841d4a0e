use std::io::ErrorKind;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use chunkload::crypto::{CustomerKey, Error};

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the new customer key (created with mode 0600; must not exist).
    keyfile: PathBuf,
}

pub fn run(args: KeygenArgs) -> Result<()> {
    match CustomerKey::generate_file(&args.keyfile) {
        Ok(_key) => {
            println!("wrote a new customer key to {} (mode 0600)", args.keyfile.display());
            Ok(())
        }
        Err(Error::KeyFileIo { source, .. }) if source.kind() == ErrorKind::AlreadyExists => bail!(
            "{} already exists; refusing to overwrite it (a lost customer key makes every manifest \
             sealed under it unreadable)",
            args.keyfile.display()
        ),
        Err(e) => Err(e.into()),
    }
}
