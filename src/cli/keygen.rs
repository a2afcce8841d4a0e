use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use chunkload::crypto::CustomerKey;

use super::output;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the new customer key (created with mode 0600; must not exist).
    keyfile: PathBuf,
}

pub fn run(args: KeygenArgs) -> Result<()> {
    // Never replaced, not even with a flag: a lost customer key makes every manifest sealed
    // under it unreadable.
    if args.keyfile.exists() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite it (a lost customer key makes every manifest \
             sealed under it unreadable)",
            args.keyfile.display()
        );
    }
    output::check_file("KEYFILE", &args.keyfile, &[], false)?;
    // Written beside and linked into place: a full disk or an interruption leaves no half key.
    let staged = output::Staged::beside(&args.keyfile);
    CustomerKey::generate_file(staged.path())?;
    staged.commit_new(output::SECRET)?;
    println!("wrote a new customer key to {} (mode 0600)", args.keyfile.display());
    Ok(())
}
