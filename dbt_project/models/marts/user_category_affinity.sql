-- User x category affinity as change rows; see macros/user_affinity_changes.sql.
{{ user_affinity_changes('category_id') }}
