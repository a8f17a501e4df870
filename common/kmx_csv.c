/* placeholder: replaced by the real module */
#include "kmx_csv.h"
typedef int kmx_placeholder_t;
