//! Terraform's lock-conflict report, as `stateseal` shows it when a state is locked by someone
//! else: the holder's lock info block and how to release a crashed run's lock.

use stateseal_store::LockInfo;

/// Terraform's lock-conflict report (printed before the error line): the holder's ID, Path,
/// Operation, Who, Version, Created and Info.
pub fn report(message: &str, holder: &LockInfo) -> String {
    format!(
        "\nError: Error acquiring the state lock\n\nError message: {message}\n{}\n\
stateseal takes the same lock as OpenTofu and Terraform, so it does not write a state that\n\
someone else is working on. Wait for that run to finish. If nothing is running (a crashed run\n\
left the lock behind), release it with: stateseal force-unlock {}\n",
        holder.display_block(),
        holder.id
    )
}
