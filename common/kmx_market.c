/*  kmx_market - markets: ISO 3166-1 alpha-2 countries, WORLD, regions, groups and survey
    panels, and the built-in country -> region table used to group by region.
    Lookups are bsearch over sorted static tables; nothing is allocated. Canonical forms
    never contain '.', because a market is one element of a dot-separated event topic.  */
#include "kmx_market.h"

#include "kmx_err.h"
#include "kmx_market_names.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

// Regions, in the order of s_region_names. A country belongs to exactly one of the
// first ten. Decisions worth knowing: RU, TR and the Caucasus (GE, AM, AZ) are Europe,
// as in the usual music-industry reports; EG is Africa; Bermuda, Greenland and Saint
// Pierre and Miquelon join the US and Canada in North America; the Caribbean (including
// PR and the US Virgin Islands) is Latin America; KR, South and Central Asia, Mongolia
// and the uninhabited Antarctic territories are Other.
typedef enum {
    S_GREATER_CHINA,
    S_JAPAN,
    S_SOUTHEAST_ASIA,
    S_NORTH_AMERICA,
    S_LATIN_AMERICA,
    S_EUROPE,
    S_MIDDLE_EAST,
    S_OCEANIA,
    S_AFRICA,
    S_OTHER,
    S_WORLD,
    S_MULTIPLE,
    S_REGION_COUNT
} s_region_t;

static const char *const s_region_names[S_REGION_COUNT] = {
    "Greater China", "Japan",   "Southeast Asia", "North America", "Latin America", "Europe",
    "Middle East",   "Oceania", "Africa",         "Other",         "World",         "Multiple"};

typedef struct {
    char code[3];         // ISO 3166-1 alpha-2 code, upper case.
    const char *name;     // ISO English short name (UTF-8).
    unsigned char region; // An s_region_t below S_WORLD.
} s_country_t;

typedef struct {
    const char *name;      // Name or alias, matched ignoring ASCII case.
    const char *canonical; // Country code or region name it stands for.
} s_alias_t;

// ISO 3166-1 alpha-2: all 249 assigned codes, sorted by code.
static const s_country_t s_countries[] = {
    {"AD", "Andorra", S_EUROPE},
    {"AE", "United Arab Emirates", S_MIDDLE_EAST},
    {"AF", "Afghanistan", S_OTHER},
    {"AG", "Antigua and Barbuda", S_LATIN_AMERICA},
    {"AI", "Anguilla", S_LATIN_AMERICA},
    {"AL", "Albania", S_EUROPE},
    {"AM", "Armenia", S_EUROPE},
    {"AO", "Angola", S_AFRICA},
    {"AQ", "Antarctica", S_OTHER},
    {"AR", "Argentina", S_LATIN_AMERICA},
    {"AS", "American Samoa", S_OCEANIA},
    {"AT", "Austria", S_EUROPE},
    {"AU", "Australia", S_OCEANIA},
    {"AW", "Aruba", S_LATIN_AMERICA},
    {"AX", "\303\205land Islands", S_EUROPE},
    {"AZ", "Azerbaijan", S_EUROPE},
    {"BA", "Bosnia and Herzegovina", S_EUROPE},
    {"BB", "Barbados", S_LATIN_AMERICA},
    {"BD", "Bangladesh", S_OTHER},
    {"BE", "Belgium", S_EUROPE},
    {"BF", "Burkina Faso", S_AFRICA},
    {"BG", "Bulgaria", S_EUROPE},
    {"BH", "Bahrain", S_MIDDLE_EAST},
    {"BI", "Burundi", S_AFRICA},
    {"BJ", "Benin", S_AFRICA},
    {"BL", "Saint Barth\303\251lemy", S_LATIN_AMERICA},
    {"BM", "Bermuda", S_NORTH_AMERICA},
    {"BN", "Brunei Darussalam", S_SOUTHEAST_ASIA},
    {"BO", "Bolivia, Plurinational State of", S_LATIN_AMERICA},
    {"BQ", "Bonaire, Sint Eustatius and Saba", S_LATIN_AMERICA},
    {"BR", "Brazil", S_LATIN_AMERICA},
    {"BS", "Bahamas", S_LATIN_AMERICA},
    {"BT", "Bhutan", S_OTHER},
    {"BV", "Bouvet Island", S_OTHER},
    {"BW", "Botswana", S_AFRICA},
    {"BY", "Belarus", S_EUROPE},
    {"BZ", "Belize", S_LATIN_AMERICA},
    {"CA", "Canada", S_NORTH_AMERICA},
    {"CC", "Cocos (Keeling) Islands", S_OCEANIA},
    {"CD", "Congo, The Democratic Republic of the", S_AFRICA},
    {"CF", "Central African Republic", S_AFRICA},
    {"CG", "Congo", S_AFRICA},
    {"CH", "Switzerland", S_EUROPE},
    {"CI", "C\303\264te d'Ivoire", S_AFRICA},
    {"CK", "Cook Islands", S_OCEANIA},
    {"CL", "Chile", S_LATIN_AMERICA},
    {"CM", "Cameroon", S_AFRICA},
    {"CN", "China", S_GREATER_CHINA},
    {"CO", "Colombia", S_LATIN_AMERICA},
    {"CR", "Costa Rica", S_LATIN_AMERICA},
    {"CU", "Cuba", S_LATIN_AMERICA},
    {"CV", "Cabo Verde", S_AFRICA},
    {"CW", "Cura\303\247ao", S_LATIN_AMERICA},
    {"CX", "Christmas Island", S_OCEANIA},
    {"CY", "Cyprus", S_EUROPE},
    {"CZ", "Czechia", S_EUROPE},
    {"DE", "Germany", S_EUROPE},
    {"DJ", "Djibouti", S_AFRICA},
    {"DK", "Denmark", S_EUROPE},
    {"DM", "Dominica", S_LATIN_AMERICA},
    {"DO", "Dominican Republic", S_LATIN_AMERICA},
    {"DZ", "Algeria", S_AFRICA},
    {"EC", "Ecuador", S_LATIN_AMERICA},
    {"EE", "Estonia", S_EUROPE},
    {"EG", "Egypt", S_AFRICA},
    {"EH", "Western Sahara", S_AFRICA},
    {"ER", "Eritrea", S_AFRICA},
    {"ES", "Spain", S_EUROPE},
    {"ET", "Ethiopia", S_AFRICA},
    {"FI", "Finland", S_EUROPE},
    {"FJ", "Fiji", S_OCEANIA},
    {"FK", "Falkland Islands (Malvinas)", S_LATIN_AMERICA},
    {"FM", "Micronesia, Federated States of", S_OCEANIA},
    {"FO", "Faroe Islands", S_EUROPE},
    {"FR", "France", S_EUROPE},
    {"GA", "Gabon", S_AFRICA},
    {"GB", "United Kingdom", S_EUROPE},
    {"GD", "Grenada", S_LATIN_AMERICA},
    {"GE", "Georgia", S_EUROPE},
    {"GF", "French Guiana", S_LATIN_AMERICA},
    {"GG", "Guernsey", S_EUROPE},
    {"GH", "Ghana", S_AFRICA},
    {"GI", "Gibraltar", S_EUROPE},
    {"GL", "Greenland", S_NORTH_AMERICA},
    {"GM", "Gambia", S_AFRICA},
    {"GN", "Guinea", S_AFRICA},
    {"GP", "Guadeloupe", S_LATIN_AMERICA},
    {"GQ", "Equatorial Guinea", S_AFRICA},
    {"GR", "Greece", S_EUROPE},
    {"GS", "South Georgia and the South Sandwich Islands", S_LATIN_AMERICA},
    {"GT", "Guatemala", S_LATIN_AMERICA},
    {"GU", "Guam", S_OCEANIA},
    {"GW", "Guinea-Bissau", S_AFRICA},
    {"GY", "Guyana", S_LATIN_AMERICA},
    {"HK", "Hong Kong", S_GREATER_CHINA},
    {"HM", "Heard Island and McDonald Islands", S_OTHER},
    {"HN", "Honduras", S_LATIN_AMERICA},
    {"HR", "Croatia", S_EUROPE},
    {"HT", "Haiti", S_LATIN_AMERICA},
    {"HU", "Hungary", S_EUROPE},
    {"ID", "Indonesia", S_SOUTHEAST_ASIA},
    {"IE", "Ireland", S_EUROPE},
    {"IL", "Israel", S_MIDDLE_EAST},
    {"IM", "Isle of Man", S_EUROPE},
    {"IN", "India", S_OTHER},
    {"IO", "British Indian Ocean Territory", S_OTHER},
    {"IQ", "Iraq", S_MIDDLE_EAST},
    {"IR", "Iran, Islamic Republic of", S_MIDDLE_EAST},
    {"IS", "Iceland", S_EUROPE},
    {"IT", "Italy", S_EUROPE},
    {"JE", "Jersey", S_EUROPE},
    {"JM", "Jamaica", S_LATIN_AMERICA},
    {"JO", "Jordan", S_MIDDLE_EAST},
    {"JP", "Japan", S_JAPAN},
    {"KE", "Kenya", S_AFRICA},
    {"KG", "Kyrgyzstan", S_OTHER},
    {"KH", "Cambodia", S_SOUTHEAST_ASIA},
    {"KI", "Kiribati", S_OCEANIA},
    {"KM", "Comoros", S_AFRICA},
    {"KN", "Saint Kitts and Nevis", S_LATIN_AMERICA},
    {"KP", "Korea, Democratic People's Republic of", S_OTHER},
    {"KR", "Korea, Republic of", S_OTHER},
    {"KW", "Kuwait", S_MIDDLE_EAST},
    {"KY", "Cayman Islands", S_LATIN_AMERICA},
    {"KZ", "Kazakhstan", S_OTHER},
    {"LA", "Lao People's Democratic Republic", S_SOUTHEAST_ASIA},
    {"LB", "Lebanon", S_MIDDLE_EAST},
    {"LC", "Saint Lucia", S_LATIN_AMERICA},
    {"LI", "Liechtenstein", S_EUROPE},
    {"LK", "Sri Lanka", S_OTHER},
    {"LR", "Liberia", S_AFRICA},
    {"LS", "Lesotho", S_AFRICA},
    {"LT", "Lithuania", S_EUROPE},
    {"LU", "Luxembourg", S_EUROPE},
    {"LV", "Latvia", S_EUROPE},
    {"LY", "Libya", S_AFRICA},
    {"MA", "Morocco", S_AFRICA},
    {"MC", "Monaco", S_EUROPE},
    {"MD", "Moldova, Republic of", S_EUROPE},
    {"ME", "Montenegro", S_EUROPE},
    {"MF", "Saint Martin (French part)", S_LATIN_AMERICA},
    {"MG", "Madagascar", S_AFRICA},
    {"MH", "Marshall Islands", S_OCEANIA},
    {"MK", "North Macedonia", S_EUROPE},
    {"ML", "Mali", S_AFRICA},
    {"MM", "Myanmar", S_SOUTHEAST_ASIA},
    {"MN", "Mongolia", S_OTHER},
    {"MO", "Macao", S_GREATER_CHINA},
    {"MP", "Northern Mariana Islands", S_OCEANIA},
    {"MQ", "Martinique", S_LATIN_AMERICA},
    {"MR", "Mauritania", S_AFRICA},
    {"MS", "Montserrat", S_LATIN_AMERICA},
    {"MT", "Malta", S_EUROPE},
    {"MU", "Mauritius", S_AFRICA},
    {"MV", "Maldives", S_OTHER},
    {"MW", "Malawi", S_AFRICA},
    {"MX", "Mexico", S_LATIN_AMERICA},
    {"MY", "Malaysia", S_SOUTHEAST_ASIA},
    {"MZ", "Mozambique", S_AFRICA},
    {"NA", "Namibia", S_AFRICA},
    {"NC", "New Caledonia", S_OCEANIA},
    {"NE", "Niger", S_AFRICA},
    {"NF", "Norfolk Island", S_OCEANIA},
    {"NG", "Nigeria", S_AFRICA},
    {"NI", "Nicaragua", S_LATIN_AMERICA},
    {"NL", "Netherlands", S_EUROPE},
    {"NO", "Norway", S_EUROPE},
    {"NP", "Nepal", S_OTHER},
    {"NR", "Nauru", S_OCEANIA},
    {"NU", "Niue", S_OCEANIA},
    {"NZ", "New Zealand", S_OCEANIA},
    {"OM", "Oman", S_MIDDLE_EAST},
    {"PA", "Panama", S_LATIN_AMERICA},
    {"PE", "Peru", S_LATIN_AMERICA},
    {"PF", "French Polynesia", S_OCEANIA},
    {"PG", "Papua New Guinea", S_OCEANIA},
    {"PH", "Philippines", S_SOUTHEAST_ASIA},
    {"PK", "Pakistan", S_OTHER},
    {"PL", "Poland", S_EUROPE},
    {"PM", "Saint Pierre and Miquelon", S_NORTH_AMERICA},
    {"PN", "Pitcairn", S_OCEANIA},
    {"PR", "Puerto Rico", S_LATIN_AMERICA},
    {"PS", "Palestine, State of", S_MIDDLE_EAST},
    {"PT", "Portugal", S_EUROPE},
    {"PW", "Palau", S_OCEANIA},
    {"PY", "Paraguay", S_LATIN_AMERICA},
    {"QA", "Qatar", S_MIDDLE_EAST},
    {"RE", "R\303\251union", S_AFRICA},
    {"RO", "Romania", S_EUROPE},
    {"RS", "Serbia", S_EUROPE},
    {"RU", "Russian Federation", S_EUROPE},
    {"RW", "Rwanda", S_AFRICA},
    {"SA", "Saudi Arabia", S_MIDDLE_EAST},
    {"SB", "Solomon Islands", S_OCEANIA},
    {"SC", "Seychelles", S_AFRICA},
    {"SD", "Sudan", S_AFRICA},
    {"SE", "Sweden", S_EUROPE},
    {"SG", "Singapore", S_SOUTHEAST_ASIA},
    {"SH", "Saint Helena, Ascension and Tristan da Cunha", S_AFRICA},
    {"SI", "Slovenia", S_EUROPE},
    {"SJ", "Svalbard and Jan Mayen", S_EUROPE},
    {"SK", "Slovakia", S_EUROPE},
    {"SL", "Sierra Leone", S_AFRICA},
    {"SM", "San Marino", S_EUROPE},
    {"SN", "Senegal", S_AFRICA},
    {"SO", "Somalia", S_AFRICA},
    {"SR", "Suriname", S_LATIN_AMERICA},
    {"SS", "South Sudan", S_AFRICA},
    {"ST", "Sao Tome and Principe", S_AFRICA},
    {"SV", "El Salvador", S_LATIN_AMERICA},
    {"SX", "Sint Maarten (Dutch part)", S_LATIN_AMERICA},
    {"SY", "Syrian Arab Republic", S_MIDDLE_EAST},
    {"SZ", "Eswatini", S_AFRICA},
    {"TC", "Turks and Caicos Islands", S_LATIN_AMERICA},
    {"TD", "Chad", S_AFRICA},
    {"TF", "French Southern Territories", S_OTHER},
    {"TG", "Togo", S_AFRICA},
    {"TH", "Thailand", S_SOUTHEAST_ASIA},
    {"TJ", "Tajikistan", S_OTHER},
    {"TK", "Tokelau", S_OCEANIA},
    {"TL", "Timor-Leste", S_SOUTHEAST_ASIA},
    {"TM", "Turkmenistan", S_OTHER},
    {"TN", "Tunisia", S_AFRICA},
    {"TO", "Tonga", S_OCEANIA},
    {"TR", "T\303\274rkiye", S_EUROPE},
    {"TT", "Trinidad and Tobago", S_LATIN_AMERICA},
    {"TV", "Tuvalu", S_OCEANIA},
    {"TW", "Taiwan, Province of China", S_GREATER_CHINA},
    {"TZ", "Tanzania, United Republic of", S_AFRICA},
    {"UA", "Ukraine", S_EUROPE},
    {"UG", "Uganda", S_AFRICA},
    {"UM", "United States Minor Outlying Islands", S_OCEANIA},
    {"US", "United States", S_NORTH_AMERICA},
    {"UY", "Uruguay", S_LATIN_AMERICA},
    {"UZ", "Uzbekistan", S_OTHER},
    {"VA", "Holy See (Vatican City State)", S_EUROPE},
    {"VC", "Saint Vincent and the Grenadines", S_LATIN_AMERICA},
    {"VE", "Venezuela, Bolivarian Republic of", S_LATIN_AMERICA},
    {"VG", "Virgin Islands, British", S_LATIN_AMERICA},
    {"VI", "Virgin Islands, U.S.", S_LATIN_AMERICA},
    {"VN", "Viet Nam", S_SOUTHEAST_ASIA},
    {"VU", "Vanuatu", S_OCEANIA},
    {"WF", "Wallis and Futuna", S_OCEANIA},
    {"WS", "Samoa", S_OCEANIA},
    {"YE", "Yemen", S_MIDDLE_EAST},
    {"YT", "Mayotte", S_AFRICA},
    {"ZA", "South Africa", S_AFRICA},
    {"ZM", "Zambia", S_AFRICA},
    {"ZW", "Zimbabwe", S_AFRICA},
};

// Country names and aliases, sorted by their ASCII-lower-cased bytes for bsearch.
static const s_alias_t s_country_names[] = {
    {"Afghanistan", "AF"},
    {"Aland Islands", "AX"},
    {"Albania", "AL"},
    {"Algeria", "DZ"},
    {"American Samoa", "AS"},
    {"Andorra", "AD"},
    {"Angola", "AO"},
    {"Anguilla", "AI"},
    {"Antarctica", "AQ"},
    {"Antigua and Barbuda", "AG"},
    {"Arab Republic of Egypt", "EG"},
    {"Argentina", "AR"},
    {"Argentine Republic", "AR"},
    {"Armenia", "AM"},
    {"Aruba", "AW"},
    {"Australia", "AU"},
    {"Austria", "AT"},
    {"Azerbaijan", "AZ"},
    {"Bahamas", "BS"},
    {"Bahrain", "BH"},
    {"Bangladesh", "BD"},
    {"Barbados", "BB"},
    {"Belarus", "BY"},
    {"Belgium", "BE"},
    {"Belize", "BZ"},
    {"Benin", "BJ"},
    {"Bermuda", "BM"},
    {"Bhutan", "BT"},
    {"Bolivarian Republic of Venezuela", "VE"},
    {"Bolivia", "BO"},
    {"Bolivia, Plurinational State of", "BO"},
    {"Bonaire, Sint Eustatius and Saba", "BQ"},
    {"Bosnia and Herzegovina", "BA"},
    {"Botswana", "BW"},
    {"Bouvet Island", "BV"},
    {"Brazil", "BR"},
    {"Britain", "GB"},
    {"British Indian Ocean Territory", "IO"},
    {"British Virgin Islands", "VG"},
    {"Brunei", "BN"},
    {"Brunei Darussalam", "BN"},
    {"Bulgaria", "BG"},
    {"Burkina Faso", "BF"},
    {"Burma", "MM"},
    {"Burundi", "BI"},
    {"Cabo Verde", "CV"},
    {"Cambodia", "KH"},
    {"Cameroon", "CM"},
    {"Canada", "CA"},
    {"Cape Verde", "CV"},
    {"Cayman Islands", "KY"},
    {"Central African Republic", "CF"},
    {"Chad", "TD"},
    {"Chile", "CL"},
    {"China", "CN"},
    {"Chinese Taipei", "TW"},
    {"Christmas Island", "CX"},
    {"Cocos (Keeling) Islands", "CC"},
    {"Cocos Islands", "CC"},
    {"Colombia", "CO"},
    {"Commonwealth of Dominica", "DM"},
    {"Commonwealth of the Bahamas", "BS"},
    {"Commonwealth of the Northern Mariana Islands", "MP"},
    {"Comoros", "KM"},
    {"Congo", "CG"},
    {"Congo, The Democratic Republic of the", "CD"},
    {"Congo-Brazzaville", "CG"},
    {"Congo-Kinshasa", "CD"},
    {"Cook Islands", "CK"},
    {"Costa Rica", "CR"},
    {"Cote d'Ivoire", "CI"},
    {"Croatia", "HR"},
    {"Cuba", "CU"},
    {"Curacao", "CW"},
    {"Cura\303\247ao", "CW"},
    {"Cyprus", "CY"},
    {"Czech Republic", "CZ"},
    {"Czechia", "CZ"},
    {"C\303\264te d'Ivoire", "CI"},
    {"Democratic People's Republic of Korea", "KP"},
    {"Democratic Republic of Sao Tome and Principe", "ST"},
    {"Democratic Republic of the Congo", "CD"},
    {"Democratic Republic of Timor-Leste", "TL"},
    {"Democratic Socialist Republic of Sri Lanka", "LK"},
    {"Denmark", "DK"},
    {"Djibouti", "DJ"},
    {"Dominica", "DM"},
    {"Dominican Republic", "DO"},
    {"DPRK", "KP"},
    {"DR Congo", "CD"},
    {"East Timor", "TL"},
    {"Eastern Republic of Uruguay", "UY"},
    {"Ecuador", "EC"},
    {"Egypt", "EG"},
    {"El Salvador", "SV"},
    {"Equatorial Guinea", "GQ"},
    {"Eritrea", "ER"},
    {"Estonia", "EE"},
    {"Eswatini", "SZ"},
    {"Ethiopia", "ET"},
    {"Falkland Islands", "FK"},
    {"Falkland Islands (Malvinas)", "FK"},
    {"Faroe Islands", "FO"},
    {"Federal Democratic Republic of Ethiopia", "ET"},
    {"Federal Democratic Republic of Nepal", "NP"},
    {"Federal Republic of Germany", "DE"},
    {"Federal Republic of Nigeria", "NG"},
    {"Federal Republic of Somalia", "SO"},
    {"Federated States of Micronesia", "FM"},
    {"Federative Republic of Brazil", "BR"},
    {"Fiji", "FJ"},
    {"Finland", "FI"},
    {"France", "FR"},
    {"French Guiana", "GF"},
    {"French Polynesia", "PF"},
    {"French Republic", "FR"},
    {"French Southern Territories", "TF"},
    {"Gabon", "GA"},
    {"Gabonese Republic", "GA"},
    {"Gambia", "GM"},
    {"Georgia", "GE"},
    {"Germany", "DE"},
    {"Ghana", "GH"},
    {"Gibraltar", "GI"},
    {"Grand Duchy of Luxembourg", "LU"},
    {"Great Britain", "GB"},
    {"Greece", "GR"},
    {"Greenland", "GL"},
    {"Grenada", "GD"},
    {"Guadeloupe", "GP"},
    {"Guam", "GU"},
    {"Guatemala", "GT"},
    {"Guernsey", "GG"},
    {"Guinea", "GN"},
    {"Guinea-Bissau", "GW"},
    {"Guyana", "GY"},
    {"Haiti", "HT"},
    {"Hashemite Kingdom of Jordan", "JO"},
    {"Heard Island and McDonald Islands", "HM"},
    {"Hellenic Republic", "GR"},
    {"Holy See", "VA"},
    {"Holy See (Vatican City State)", "VA"},
    {"Honduras", "HN"},
    {"Hong Kong", "HK"},
    {"Hong Kong SAR", "HK"},
    {"Hong Kong Special Administrative Region of China", "HK"},
    {"Hong Kong, China", "HK"},
    {"Hungary", "HU"},
    {"Iceland", "IS"},
    {"Independent State of Papua New Guinea", "PG"},
    {"Independent State of Samoa", "WS"},
    {"India", "IN"},
    {"Indonesia", "ID"},
    {"Iran", "IR"},
    {"Iran, Islamic Republic of", "IR"},
    {"Iraq", "IQ"},
    {"Ireland", "IE"},
    {"Islamic Republic of Afghanistan", "AF"},
    {"Islamic Republic of Iran", "IR"},
    {"Islamic Republic of Mauritania", "MR"},
    {"Islamic Republic of Pakistan", "PK"},
    {"Isle of Man", "IM"},
    {"Israel", "IL"},
    {"Italian Republic", "IT"},
    {"Italy", "IT"},
    {"Ivory Coast", "CI"},
    {"Jamaica", "JM"},
    {"Japan", "JP"},
    {"Jersey", "JE"},
    {"Jordan", "JO"},
    {"Kazakhstan", "KZ"},
    {"Kenya", "KE"},
    {"Kingdom of Bahrain", "BH"},
    {"Kingdom of Belgium", "BE"},
    {"Kingdom of Bhutan", "BT"},
    {"Kingdom of Cambodia", "KH"},
    {"Kingdom of Denmark", "DK"},
    {"Kingdom of Eswatini", "SZ"},
    {"Kingdom of Lesotho", "LS"},
    {"Kingdom of Morocco", "MA"},
    {"Kingdom of Norway", "NO"},
    {"Kingdom of Saudi Arabia", "SA"},
    {"Kingdom of Spain", "ES"},
    {"Kingdom of Sweden", "SE"},
    {"Kingdom of Thailand", "TH"},
    {"Kingdom of the Netherlands", "NL"},
    {"Kingdom of Tonga", "TO"},
    {"Kiribati", "KI"},
    {"Korea", "KR"},
    {"Korea (Republic of)", "KR"},
    {"Korea, Democratic People's Republic of", "KP"},
    {"Korea, North", "KP"},
    {"Korea, Republic of", "KR"},
    {"Korea, South", "KR"},
    {"Kuwait", "KW"},
    {"Kyrgyz Republic", "KG"},
    {"Kyrgyzstan", "KG"},
    {"Lao PDR", "LA"},
    {"Lao People's Democratic Republic", "LA"},
    {"Laos", "LA"},
    {"Latvia", "LV"},
    {"Lebanese Republic", "LB"},
    {"Lebanon", "LB"},
    {"Lesotho", "LS"},
    {"Liberia", "LR"},
    {"Libya", "LY"},
    {"Liechtenstein", "LI"},
    {"Lithuania", "LT"},
    {"Luxembourg", "LU"},
    {"Macao", "MO"},
    {"Macao SAR", "MO"},
    {"Macao Special Administrative Region of China", "MO"},
    {"Macao, China", "MO"},
    {"Macau", "MO"},
    {"Macau SAR", "MO"},
    {"Macedonia", "MK"},
    {"Madagascar", "MG"},
    {"Mainland China", "CN"},
    {"Malawi", "MW"},
    {"Malaysia", "MY"},
    {"Maldives", "MV"},
    {"Mali", "ML"},
    {"Malta", "MT"},
    {"Marshall Islands", "MH"},
    {"Martinique", "MQ"},
    {"Mauritania", "MR"},
    {"Mauritius", "MU"},
    {"Mayotte", "YT"},
    {"Mexico", "MX"},
    {"Micronesia", "FM"},
    {"Micronesia, Federated States of", "FM"},
    {"Moldova", "MD"},
    {"Moldova, Republic of", "MD"},
    {"Monaco", "MC"},
    {"Mongolia", "MN"},
    {"Montenegro", "ME"},
    {"Montserrat", "MS"},
    {"Morocco", "MA"},
    {"Mozambique", "MZ"},
    {"Myanmar", "MM"},
    {"Namibia", "NA"},
    {"Nauru", "NR"},
    {"Nepal", "NP"},
    {"Netherlands", "NL"},
    {"New Caledonia", "NC"},
    {"New Zealand", "NZ"},
    {"Nicaragua", "NI"},
    {"Niger", "NE"},
    {"Nigeria", "NG"},
    {"Niue", "NU"},
    {"Norfolk Island", "NF"},
    {"North Korea", "KP"},
    {"North Macedonia", "MK"},
    {"Northern Mariana Islands", "MP"},
    {"Norway", "NO"},
    {"Oman", "OM"},
    {"Pakistan", "PK"},
    {"Palau", "PW"},
    {"Palestine", "PS"},
    {"Palestine, State of", "PS"},
    {"Panama", "PA"},
    {"Papua New Guinea", "PG"},
    {"Paraguay", "PY"},
    {"People's Democratic Republic of Algeria", "DZ"},
    {"People's Republic of Bangladesh", "BD"},
    {"People's Republic of China", "CN"},
    {"Peru", "PE"},
    {"Philippines", "PH"},
    {"Pitcairn", "PN"},
    {"Plurinational State of Bolivia", "BO"},
    {"Poland", "PL"},
    {"Portugal", "PT"},
    {"Portuguese Republic", "PT"},
    {"PRC", "CN"},
    {"Principality of Andorra", "AD"},
    {"Principality of Liechtenstein", "LI"},
    {"Principality of Monaco", "MC"},
    {"Puerto Rico", "PR"},
    {"Qatar", "QA"},
    {"Republic of Albania", "AL"},
    {"Republic of Angola", "AO"},
    {"Republic of Armenia", "AM"},
    {"Republic of Austria", "AT"},
    {"Republic of Azerbaijan", "AZ"},
    {"Republic of Belarus", "BY"},
    {"Republic of Benin", "BJ"},
    {"Republic of Bosnia and Herzegovina", "BA"},
    {"Republic of Botswana", "BW"},
    {"Republic of Bulgaria", "BG"},
    {"Republic of Burundi", "BI"},
    {"Republic of Cabo Verde", "CV"},
    {"Republic of Cameroon", "CM"},
    {"Republic of Chad", "TD"},
    {"Republic of Chile", "CL"},
    {"Republic of Colombia", "CO"},
    {"Republic of Costa Rica", "CR"},
    {"Republic of Croatia", "HR"},
    {"Republic of Cuba", "CU"},
    {"Republic of Cyprus", "CY"},
    {"Republic of C\303\264te d'Ivoire", "CI"},
    {"Republic of Djibouti", "DJ"},
    {"Republic of Ecuador", "EC"},
    {"Republic of El Salvador", "SV"},
    {"Republic of Equatorial Guinea", "GQ"},
    {"Republic of Estonia", "EE"},
    {"Republic of Fiji", "FJ"},
    {"Republic of Finland", "FI"},
    {"Republic of Ghana", "GH"},
    {"Republic of Guatemala", "GT"},
    {"Republic of Guinea", "GN"},
    {"Republic of Guinea-Bissau", "GW"},
    {"Republic of Guyana", "GY"},
    {"Republic of Haiti", "HT"},
    {"Republic of Honduras", "HN"},
    {"Republic of Iceland", "IS"},
    {"Republic of India", "IN"},
    {"Republic of Indonesia", "ID"},
    {"Republic of Iraq", "IQ"},
    {"Republic of Kazakhstan", "KZ"},
    {"Republic of Kenya", "KE"},
    {"Republic of Kiribati", "KI"},
    {"Republic of Korea", "KR"},
    {"Republic of Latvia", "LV"},
    {"Republic of Liberia", "LR"},
    {"Republic of Lithuania", "LT"},
    {"Republic of Madagascar", "MG"},
    {"Republic of Malawi", "MW"},
    {"Republic of Maldives", "MV"},
    {"Republic of Mali", "ML"},
    {"Republic of Malta", "MT"},
    {"Republic of Mauritius", "MU"},
    {"Republic of Moldova", "MD"},
    {"Republic of Mozambique", "MZ"},
    {"Republic of Myanmar", "MM"},
    {"Republic of Namibia", "NA"},
    {"Republic of Nauru", "NR"},
    {"Republic of Nicaragua", "NI"},
    {"Republic of North Macedonia", "MK"},
    {"Republic of Palau", "PW"},
    {"Republic of Panama", "PA"},
    {"Republic of Paraguay", "PY"},
    {"Republic of Peru", "PE"},
    {"Republic of Poland", "PL"},
    {"Republic of San Marino", "SM"},
    {"Republic of Senegal", "SN"},
    {"Republic of Serbia", "RS"},
    {"Republic of Seychelles", "SC"},
    {"Republic of Sierra Leone", "SL"},
    {"Republic of Singapore", "SG"},
    {"Republic of Slovenia", "SI"},
    {"Republic of South Africa", "ZA"},
    {"Republic of South Sudan", "SS"},
    {"Republic of Suriname", "SR"},
    {"Republic of Tajikistan", "TJ"},
    {"Republic of the Congo", "CG"},
    {"Republic of the Gambia", "GM"},
    {"Republic of the Marshall Islands", "MH"},
    {"Republic of the Niger", "NE"},
    {"Republic of the Philippines", "PH"},
    {"Republic of the Sudan", "SD"},
    {"Republic of Trinidad and Tobago", "TT"},
    {"Republic of Tunisia", "TN"},
    {"Republic of T\303\274rkiye", "TR"},
    {"Republic of Uganda", "UG"},
    {"Republic of Uzbekistan", "UZ"},
    {"Republic of Vanuatu", "VU"},
    {"Republic of Yemen", "YE"},
    {"Republic of Zambia", "ZM"},
    {"Republic of Zimbabwe", "ZW"},
    {"Reunion", "RE"},
    {"Romania", "RO"},
    {"Russia", "RU"},
    {"Russian Federation", "RU"},
    {"Rwanda", "RW"},
    {"Rwandese Republic", "RW"},
    {"R\303\251union", "RE"},
    {"Saint Barthelemy", "BL"},
    {"Saint Barth\303\251lemy", "BL"},
    {"Saint Helena, Ascension and Tristan da Cunha", "SH"},
    {"Saint Kitts and Nevis", "KN"},
    {"Saint Lucia", "LC"},
    {"Saint Martin", "MF"},
    {"Saint Martin (French part)", "MF"},
    {"Saint Pierre and Miquelon", "PM"},
    {"Saint Vincent and the Grenadines", "VC"},
    {"Samoa", "WS"},
    {"San Marino", "SM"},
    {"Sao Tome and Principe", "ST"},
    {"Saudi Arabia", "SA"},
    {"Senegal", "SN"},
    {"Serbia", "RS"},
    {"Seychelles", "SC"},
    {"Sierra Leone", "SL"},
    {"Singapore", "SG"},
    {"Sint Maarten", "SX"},
    {"Sint Maarten (Dutch part)", "SX"},
    {"Slovak Republic", "SK"},
    {"Slovakia", "SK"},
    {"Slovenia", "SI"},
    {"Socialist Republic of Viet Nam", "VN"},
    {"Solomon Islands", "SB"},
    {"Somalia", "SO"},
    {"South Africa", "ZA"},
    {"South Georgia and the South Sandwich Islands", "GS"},
    {"South Korea", "KR"},
    {"South Sudan", "SS"},
    {"Spain", "ES"},
    {"Sri Lanka", "LK"},
    {"State of Israel", "IL"},
    {"State of Kuwait", "KW"},
    {"State of Qatar", "QA"},
    {"Sudan", "SD"},
    {"Sultanate of Oman", "OM"},
    {"Suriname", "SR"},
    {"Svalbard and Jan Mayen", "SJ"},
    {"Swaziland", "SZ"},
    {"Sweden", "SE"},
    {"Swiss Confederation", "CH"},
    {"Switzerland", "CH"},
    {"Syria", "SY"},
    {"Syrian Arab Republic", "SY"},
    {"Taiwan", "TW"},
    {"Taiwan, Province of China", "TW"},
    {"Tajikistan", "TJ"},
    {"Tanzania", "TZ"},
    {"Tanzania, United Republic of", "TZ"},
    {"Thailand", "TH"},
    {"The Bahamas", "BS"},
    {"The Gambia", "GM"},
    {"The Netherlands", "NL"},
    {"The Philippines", "PH"},
    {"the State of Eritrea", "ER"},
    {"the State of Palestine", "PS"},
    {"Timor-Leste", "TL"},
    {"Togo", "TG"},
    {"Togolese Republic", "TG"},
    {"Tokelau", "TK"},
    {"Tonga", "TO"},
    {"Trinidad and Tobago", "TT"},
    {"Tunisia", "TN"},
    {"Turkey", "TR"},
    {"Turkiye", "TR"},
    {"Turkmenistan", "TM"},
    {"Turks and Caicos Islands", "TC"},
    {"Tuvalu", "TV"},
    {"T\303\274rkiye", "TR"},
    {"U.K.", "GB"},
    {"U.S.", "US"},
    {"U.S. Virgin Islands", "VI"},
    {"U.S.A.", "US"},
    {"UAE", "AE"},
    {"Uganda", "UG"},
    {"UK", "GB"},
    {"Ukraine", "UA"},
    {"Union of the Comoros", "KM"},
    {"United Arab Emirates", "AE"},
    {"United Kingdom", "GB"},
    {"United Kingdom of Great Britain and Northern Ireland", "GB"},
    {"United Mexican States", "MX"},
    {"United Republic of Tanzania", "TZ"},
    {"United States", "US"},
    {"United States Minor Outlying Islands", "UM"},
    {"United States of America", "US"},
    {"Uruguay", "UY"},
    {"US Virgin Islands", "VI"},
    {"USA", "US"},
    {"Uzbekistan", "UZ"},
    {"Vanuatu", "VU"},
    {"Vatican", "VA"},
    {"Vatican City", "VA"},
    {"Venezuela", "VE"},
    {"Venezuela, Bolivarian Republic of", "VE"},
    {"Viet Nam", "VN"},
    {"Vietnam", "VN"},
    {"Virgin Islands of the United States", "VI"},
    {"Virgin Islands, British", "VG"},
    {"Virgin Islands, U.S.", "VI"},
    {"Wallis and Futuna", "WF"},
    {"Western Sahara", "EH"},
    {"Yemen", "YE"},
    {"Zambia", "ZM"},
    {"Zimbabwe", "ZW"},
    {"\303\205land Islands", "AX"},
};

// Region names and aliases, sorted like s_country_names. "Japan" is absent on purpose:
// as a market it is the country JP; kmx_region_canonical() handles it separately.
static const s_alias_t s_region_aliases[] = {
    {"Africa", "Africa"},
    {"Europe", "Europe"},
    {"Global", "World"},
    {"Greater China", "Greater China"},
    {"LatAm", "Latin America"},
    {"Latin America", "Latin America"},
    {"Latin America and the Caribbean", "Latin America"},
    {"Middle East", "Middle East"},
    {"North America", "North America"},
    {"Oceania", "Oceania"},
    {"Other", "Other"},
    {"South East Asia", "Southeast Asia"},
    {"South-East Asia", "Southeast Asia"},
    {"Southeast Asia", "Southeast Asia"},
    {"World", "World"},
    {"Worldwide", "World"},
};

// A slice of the caller's text: markets are parsed in place, without copying.
typedef struct {
    const char *p; // First byte.
    size_t n;      // Length in bytes.
} s_span_t;

// One resolved country, region or WORLD.
typedef struct {
    const char *canonical; // Static canonical text ("JP", "Europe", "WORLD").
    s_region_t region;     // Its region.
} s_member_t;

// Longest group that can fit: two-letter members joined by '+' in KMX_MARKET_MAX - 1 bytes.
#define S_GROUP_MAX ((KMX_MARKET_MAX - 1 + 1) / 3)
#define S_PANEL_PREFIX "panel:"

// A parsed market: a panel, or 1 (single) to S_GROUP_MAX (group) members.
typedef struct {
    s_member_t members[S_GROUP_MAX]; // Members in input order.
    size_t count;                    // Number of members; 0 for a panel.
    s_span_t panel;                  // Panel text after the prefix, when count is 0.
} s_market_t;

static int s_lower(int c) {
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int s_is_space(int c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static s_span_t s_trim(const char *p, size_t n) {
    while (n > 0 && s_is_space((unsigned char)p[0])) {
        p++;
        n--;
    }
    while (n > 0 && s_is_space((unsigned char)p[n - 1]))
        n--;
    return (s_span_t){p, n};
}

// Compares a span with a NUL-terminated name, ignoring ASCII case; bytes >= 0x80 compare
// as they are, in the same order the tables were sorted in.
static int s_span_casecmp(s_span_t key, const char *name) {
    size_t i = 0;
    for (; i < key.n && name[i] != '\0'; i++) {
        int a = s_lower((unsigned char)key.p[i]);
        int b = s_lower((unsigned char)name[i]);
        if (a != b)
            return a - b;
    }
    if (i < key.n)
        return 1;
    return name[i] != '\0' ? -1 : 0;
}

static int s_cmp_country(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const s_country_t *)elem)->code);
}

static int s_cmp_alias(const void *key, const void *elem) {
    return s_span_casecmp(*(const s_span_t *)key, ((const s_alias_t *)elem)->name);
}

// Finds an upper-case two-letter code.
static const s_country_t *s_country_find(const char *code) {
    return bsearch(code, s_countries, sizeof s_countries / sizeof s_countries[0],
                   sizeof s_countries[0], s_cmp_country);
}

// Finds a two-letter code in any case.
static const s_country_t *s_country_find_span(s_span_t s) {
    if (s.n != 2)
        return NULL;
    char code[3] = {(char)(s_lower((unsigned char)s.p[0]) - 'a' + 'A'),
                    (char)(s_lower((unsigned char)s.p[1]) - 'a' + 'A'), '\0'};
    return s_country_find(code);
}

static const s_alias_t *s_alias_find(s_span_t s, const s_alias_t *table, size_t count) {
    return bsearch(&s, table, count, sizeof table[0], s_cmp_alias);
}

static s_region_t s_region_index(const char *name) {
    for (int i = 0; i < S_REGION_COUNT; i++) {
        if (strcmp(s_region_names[i], name) == 0)
            return (s_region_t)i;
    }
    assert(!"region alias names an unknown region");
    return S_OTHER;
}

// Resolves one country (code or name), region or WORLD.
static int s_resolve_one(s_span_t s, s_member_t *m) {
    const s_country_t *c = s_country_find_span(s);
    if (c == NULL) {
        const s_alias_t *a =
            s_alias_find(s, s_country_names, sizeof s_country_names / sizeof s_country_names[0]);
        if (a != NULL)
            c = s_country_find(a->canonical);
    }
    if (c == NULL) {
        // Alpha-3 codes, Korean and extra English names: kmx_market_names' tables.
        const char *code = kmx_market_name_lookup(s.p, s.n);
        if (code != NULL && strcmp(code, "WORLD") == 0) {
            *m = (s_member_t){"WORLD", S_WORLD};
            return 0;
        }
        if (code != NULL)
            c = s_country_find(code);
    }
    if (c != NULL) {
        *m = (s_member_t){c->code, (s_region_t)c->region};
        return 0;
    }
    const s_alias_t *r =
        s_alias_find(s, s_region_aliases, sizeof s_region_aliases / sizeof s_region_aliases[0]);
    if (r == NULL)
        return KMX_ERR_INVAL;
    m->region = s_region_index(r->canonical);
    m->canonical = m->region == S_WORLD ? "WORLD" : s_region_names[m->region];
    return 0;
}

// Panel text: non-empty printable ASCII without '.', which would split the event topic.
static int s_parse_panel(s_span_t s, s_market_t *out) {
    s_span_t text = s_trim(s.p + strlen(S_PANEL_PREFIX), s.n - strlen(S_PANEL_PREFIX));
    if (text.n == 0)
        return KMX_ERR_INVAL;
    for (size_t i = 0; i < text.n; i++) {
        unsigned char ch = (unsigned char)text.p[i];
        if (ch < 0x20 || ch > 0x7e || ch == '.')
            return KMX_ERR_INVAL;
    }
    if (strlen(S_PANEL_PREFIX) + text.n > KMX_MARKET_MAX - 1)
        return KMX_ERR_OVERFLOW;
    out->count = 0;
    out->panel = text;
    return 0;
}

static int s_has_member(const s_market_t *g, const char *canonical) {
    for (size_t i = 0; i < g->count; i++) {
        if (g->members[i].canonical == canonical)
            return 1;
    }
    return 0;
}

// Group "A+B+...": every member a country or region, none repeated, WORLD excluded.
// Canonical strings are static table pointers, so a repeat is a pointer match.
static int s_parse_group(s_span_t s, s_market_t *out) {
    const char *end = s.p + s.n;
    const char *p = s.p;
    int overflow = 0;
    out->count = 0;
    for (;;) {
        const char *plus = memchr(p, '+', (size_t)(end - p));
        const char *stop = plus != NULL ? plus : end;
        s_member_t m;
        if (s_resolve_one(s_trim(p, (size_t)(stop - p)), &m) != 0 || m.region == S_WORLD)
            return KMX_ERR_INVAL;
        if (s_has_member(out, m.canonical))
            return KMX_ERR_INVAL;
        if (out->count == S_GROUP_MAX)
            overflow = 1;
        else
            out->members[out->count++] = m;
        if (plus == NULL)
            break;
        p = plus + 1;
    }
    return overflow ? KMX_ERR_OVERFLOW : 0;
}

// Continents and their complements, named aggregate markets (kmx_market.h says which
// countries each holds). Matched whole, ignoring ASCII case; never group members.
typedef enum { S_AGG_ASIA, S_AGG_NON_ASIA, S_AGG_COUNT } s_aggregate_t;

static const char *const s_aggregate_names[S_AGG_COUNT] = {"Asia", "non-Asia"};

static const struct {
    const char *name;    // as written, any case
    s_aggregate_t which; // the aggregate it names
} s_aggregate_aliases[] = {{"Asia", S_AGG_ASIA},
                           {"non-Asia", S_AGG_NON_ASIA},
                           {"non Asia", S_AGG_NON_ASIA},
                           {"non-Asian", S_AGG_NON_ASIA},
                           {"outside Asia", S_AGG_NON_ASIA}};

// Countries of the region Other that are in Asia (the rest of Other is Antarctic).
static const char *const s_asia_other[] = {"AF", "BD", "BT", "IN", "KG", "KP", "KR", "KZ",
                                           "LK", "MN", "MV", "NP", "PK", "TJ", "TM", "UZ"};

#define S_NELEM(a) (sizeof(a) / sizeof((a)[0]))

// Returns the canonical name of the aggregate s names, or NULL.
static const char *s_aggregate_find(s_span_t s) {
    for (size_t i = 0; i < S_NELEM(s_aggregate_aliases); i++) {
        if (s_span_casecmp(s, s_aggregate_aliases[i].name) == 0)
            return s_aggregate_names[s_aggregate_aliases[i].which];
    }
    return NULL;
}

static int s_country_in_asia(const s_country_t *c) {
    if (c->region == S_GREATER_CHINA || c->region == S_JAPAN || c->region == S_SOUTHEAST_ASIA ||
        c->region == S_MIDDLE_EAST)
        return 1;
    for (size_t i = 0; c->region == S_OTHER && i < S_NELEM(s_asia_other); i++) {
        if (strcmp(s_asia_other[i], c->code) == 0)
            return 1;
    }
    return 0;
}

static int s_parse(const char *text, s_market_t *out) {
    if (text == NULL)
        return KMX_ERR_INVAL;
    s_span_t s = s_trim(text, strlen(text));
    if (s.n == 0)
        return KMX_ERR_INVAL;
    s_span_t prefix = {s.p, s.n < strlen(S_PANEL_PREFIX) ? s.n : strlen(S_PANEL_PREFIX)};
    if (s_span_casecmp(prefix, S_PANEL_PREFIX) == 0)
        return s_parse_panel(s, out);
    if (memchr(s.p, '+', s.n) != NULL)
        return s_parse_group(s, out);
    out->count = 1;
    const char *agg = s_aggregate_find(s);
    if (agg != NULL) {
        out->members[0] = (s_member_t){agg, S_MULTIPLE};
        return 0;
    }
    return s_resolve_one(s, &out->members[0]);
}

// Appends n bytes at *len, failing when out (with its NUL) would not hold them.
static int s_append(char *out, size_t size, size_t *len, const char *p, size_t n) {
    if (*len + n + 1 > size)
        return KMX_ERR_OVERFLOW;
    memcpy(out + *len, p, n);
    *len += n;
    out[*len] = '\0';
    return 0;
}

static int s_write(const s_market_t *m, char *out, size_t size) {
    size_t len = 0;
    int rc = 0;
    out[0] = '\0';
    if (m->count == 0) {
        rc = s_append(out, size, &len, S_PANEL_PREFIX, strlen(S_PANEL_PREFIX));
        if (rc == 0)
            rc = s_append(out, size, &len, m->panel.p, m->panel.n);
    }
    for (size_t i = 0; i < m->count && rc == 0; i++) {
        if (i > 0)
            rc = s_append(out, size, &len, "+", 1);
        if (rc == 0)
            rc =
                s_append(out, size, &len, m->members[i].canonical, strlen(m->members[i].canonical));
    }
    if (rc == 0 && len > KMX_MARKET_MAX - 1)
        rc = KMX_ERR_OVERFLOW;
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

int kmx_market_canonical(const char *text, char *out, size_t size) {
    if (out == NULL || size == 0)
        return KMX_ERR_INVAL;
    out[0] = '\0';
    s_market_t m;
    int rc = s_parse(text, &m);
    if (rc != 0)
        return rc;
    return s_write(&m, out, size);
}

const char *kmx_market_region(const char *canonical) {
    s_market_t m;
    if (s_parse(canonical, &m) != 0)
        return s_region_names[S_OTHER];
    if (m.count == 0)
        return s_region_names[S_MULTIPLE];
    for (size_t i = 1; i < m.count; i++) {
        if (m.members[i].region != m.members[0].region)
            return s_region_names[S_MULTIPLE];
    }
    return s_region_names[m.members[0].region];
}

int kmx_region_canonical(const char *text, char *out, size_t size) {
    if (text == NULL || out == NULL || size == 0)
        return KMX_ERR_INVAL;
    out[0] = '\0';
    s_span_t s = s_trim(text, strlen(text));
    const char *name = NULL;
    if (s_span_casecmp(s, s_region_names[S_JAPAN]) == 0)
        name = s_region_names[S_JAPAN];
    else if (s_span_casecmp(s, s_region_names[S_MULTIPLE]) == 0)
        name = s_region_names[S_MULTIPLE];
    else {
        const s_alias_t *r =
            s_alias_find(s, s_region_aliases, sizeof s_region_aliases / sizeof s_region_aliases[0]);
        name = r != NULL ? r->canonical : NULL;
    }
    if (name == NULL)
        return KMX_ERR_INVAL;
    size_t len = 0;
    return s_append(out, size, &len, name, strlen(name));
}

// Accepts only an exact upper-case two-letter code.
static const s_country_t *s_country_exact(const char *code) {
    if (code == NULL || strlen(code) != 2)
        return NULL;
    if (code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z')
        return NULL;
    return s_country_find(code);
}

int kmx_market_is_country(const char *code) {
    return s_country_exact(code) != NULL;
}

const char *kmx_market_country_name(const char *code) {
    const s_country_t *c = s_country_exact(code);
    return c != NULL ? c->name : NULL;
}

// Levels and members.

kmx_market_level_t kmx_market_level(const char *canonical) {
    s_market_t m;
    if (s_parse(canonical, &m) != 0)
        return KMX_MARKET_UNKNOWN;
    if (m.count == 0)
        return KMX_MARKET_PANEL;
    if (m.count > 1)
        return KMX_MARKET_GROUP;
    if (m.members[0].region == S_WORLD)
        return KMX_MARKET_WORLD;
    if (m.members[0].region == S_MULTIPLE)
        return KMX_MARKET_AGGREGATE;
    if (s_country_find(m.members[0].canonical) != NULL)
        return KMX_MARKET_COUNTRY;
    return KMX_MARKET_REGION;
}

const char *kmx_market_level_name(kmx_market_level_t level) {
    switch (level) {
    case KMX_MARKET_COUNTRY:
        return "country";
    case KMX_MARKET_REGION:
        return "region";
    case KMX_MARKET_GROUP:
        return "group";
    case KMX_MARKET_PANEL:
        return "panel";
    case KMX_MARKET_AGGREGATE:
        return "aggregate";
    case KMX_MARKET_WORLD:
        return "world";
    default:
        return "unknown";
    }
}

// Returns nonzero when country c belongs to the single member m.
static int s_member_contains(const s_member_t *m, const s_country_t *c) {
    if (m->region == S_WORLD)
        return 1;
    if (m->region == S_MULTIPLE) {
        int asia = s_country_in_asia(c);
        return strcmp(m->canonical, s_aggregate_names[S_AGG_ASIA]) == 0 ? asia : !asia;
    }
    if (s_country_find(m->canonical) != NULL)
        return m->canonical == c->code || strcmp(m->canonical, c->code) == 0;
    return m->region == (s_region_t)c->region;
}

static int s_market_contains(const s_market_t *m, const s_country_t *c) {
    for (size_t i = 0; i < m->count; i++) {
        if (s_member_contains(&m->members[i], c))
            return 1;
    }
    return 0;
}

int kmx_market_contains(const char *market, const char *country) {
    s_market_t m;
    const s_country_t *c = s_country_exact(country);
    if (c == NULL || s_parse(market, &m) != 0)
        return KMX_ERR_INVAL;
    if (m.count == 0)
        return KMX_ERR_NOT_FOUND;
    return s_market_contains(&m, c);
}

int kmx_market_members(const char *market, const char **codes, size_t cap, size_t *count) {
    s_market_t m;
    if (count == NULL || (codes == NULL && cap > 0) || s_parse(market, &m) != 0)
        return KMX_ERR_INVAL;
    *count = 0;
    if (m.count == 0)
        return KMX_ERR_NOT_FOUND;
    for (size_t i = 0; i < S_NELEM(s_countries); i++) {
        if (!s_market_contains(&m, &s_countries[i]))
            continue;
        if (*count < cap)
            codes[*count] = s_countries[i].code;
        (*count)++;
    }
    return 0;
}
