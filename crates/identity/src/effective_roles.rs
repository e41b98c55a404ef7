//! What roles a user really has on a target: direct assignments, those of their
//! groups, those inherited from the target's domain and parent projects, and every
//! role those imply. Tokens are built from this at issue and at every validation.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::error::Result;
use crate::store::{AssignmentFilter, Store, Target};

/// Adds to `roles` every role they imply, transitively; cycles are harmless.
pub fn expand_implied(roles: &mut BTreeSet<String>, implications: &[(String, String)]) {
    let mut by_prior: HashMap<&str, Vec<&str>> = HashMap::new();
    for (prior, implied) in implications {
        by_prior.entry(prior).or_default().push(implied);
    }
    let mut frontier: Vec<String> = roles.iter().cloned().collect();
    while let Some(role) = frontier.pop() {
        for implied in by_prior.get(role.as_str()).into_iter().flatten() {
            if roles.insert(implied.to_string()) {
                frontier.push(implied.to_string());
            }
        }
    }
}

impl Store {
    /// The ids of the roles `user_id` holds on `target`, implied roles included.
    pub async fn effective_role_ids(&self, user_id: &str, target: &Target) -> Result<BTreeSet<String>> {
        let mut actors = self.group_ids_of_user(user_id).await?;
        actors.push(user_id.to_string());
        let mut roles = BTreeSet::new();

        // Direct assignments on the target itself.
        let direct = self
            .list_assignments(&AssignmentFilter {
                actor_ids: Some(actors.clone()),
                target_ids: Some(vec![target.id().to_string()]),
                inherited: Some(false),
                ..Default::default()
            })
            .await?;
        roles.extend(direct.into_iter().filter(|a| &a.target == target).map(|a| a.role_id));

        // A project also receives what its domain and its ancestors pass down.
        if let Target::Project(project_id) = target {
            if let Some(project) = self.get_project_any(project_id).await? {
                let mut sources: HashSet<String> = HashSet::from([project.domain_id.clone()]);
                sources.extend(self.project_ancestors(&project).await?.into_iter().map(|p| p.id));
                let inherited = self
                    .list_assignments(&AssignmentFilter {
                        actor_ids: Some(actors),
                        target_ids: Some(sources.into_iter().collect()),
                        inherited: Some(true),
                        ..Default::default()
                    })
                    .await?;
                roles.extend(inherited.into_iter().filter(|a| !matches!(a.target, Target::System)).map(|a| a.role_id));
            }
        }
        if !roles.is_empty() {
            expand_implied(&mut roles, &self.list_implied_roles().await?);
            // Domain-specific roles only stand for the global roles they imply;
            // they never reach a token or an effective listing.
            let domain_specific: BTreeSet<String> =
                self.list_roles().await?.into_iter().filter(|r| r.domain_id.is_some()).map(|r| r.id).collect();
            roles.retain(|r| !domain_specific.contains(r));
        }
        Ok(roles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implications_expand_transitively_and_survive_cycles() {
        let imps = vec![
            ("admin".to_string(), "member".to_string()),
            ("member".to_string(), "reader".to_string()),
            ("reader".to_string(), "admin".to_string()),
        ];
        let mut roles = BTreeSet::from(["member".to_string()]);
        expand_implied(&mut roles, &imps);
        assert_eq!(roles.len(), 3);
        let mut alone = BTreeSet::from(["other".to_string()]);
        expand_implied(&mut alone, &imps);
        assert_eq!(alone.len(), 1);
    }
}
