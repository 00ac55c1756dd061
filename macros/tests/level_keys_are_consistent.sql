{#- A KPI mart's level matches its keys: company rows have no team_id and no
    rep_id, team rows no rep_id, rep rows a rep_id. -#}

{% test level_keys_are_consistent(model) %}
select *
from {{ model }}
where not (
    (level = 'company' and team_id is null and rep_id is null)
    or (level = 'team' and rep_id is null)
    or (level = 'rep' and rep_id is not null)
)
{% endtest %}
