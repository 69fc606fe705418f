-- User x brand affinity as change rows; see macros/user_affinity_changes.sql.
{{ user_affinity_changes('brand_id') }}
