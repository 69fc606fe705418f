-- CVR training rows: clicked impressions whose conversion label is final by the end of D (ESMM
-- trains pCVR on clicks only). Same columns as ctr_training_set, so it is a filter of it.
select *
from {{ ref('ctr_training_set') }}
where label_click and conversion_label_final
