/*
 * names.c — the given names and surnames behind ecrm's fake names and fake
 * email addresses (pseudonym.c) and behind name detection (pii.c).
 *
 * The order of each list is part of the pseudonym format: a pseudonym picks
 * the entry at an index taken from an HMAC, so reordering or editing a list
 * changes every pseudonym.  Append only.
 */
#include "postgres.h"

#include "ecrm.h"
#include "mb/pg_wchar.h"
#include "pii.h"
#include "utils/memutils.h"

const char *const ecrm_first_names[] = {
	"Aaron", "Abigail", "Adam", "Adrian", "Aiden", "Aisha", "Alan", "Albert", "Alejandro",
	"Alessandro", "Alex", "Alexander", "Alexandra", "Alice", "Alicia", "Amanda", "Amelia", "Amir",
	"Amy", "Ana", "Andrea", "Andrew", "Angela", "Anna", "Anne", "Anthony", "Antonio", "Arthur",
	"Astrid", "Aurora", "Ava", "Barbara", "Ben", "Benjamin", "Bjorn", "Bram", "Brian", "Camille",
	"Carla", "Carlos", "Carmen", "Caroline", "Catherine", "Charles", "Charlie", "Charlotte",
	"Chiara", "Chloe", "Christian", "Christina", "Christopher", "Cian", "Ciara", "Claire", "Clara",
	"Conor", "Daan", "Daniel", "Daniela", "David", "Diana", "Diego", "Dmitri", "Eleanor", "Elena",
	"Elias", "Elijah", "Elizabeth", "Ella", "Elsa", "Emil", "Emilia", "Emily", "Emma", "Eric",
	"Erik", "Ethan", "Eva", "Evelyn", "Fatima", "Felix", "Finn", "Fiona", "Fleur", "Francesca",
	"Francesco", "Frank", "Freja", "Gabriel", "Gabriela", "George", "Giorgia", "Giulia", "Grace",
	"Hannah", "Harper", "Harry", "Hassan", "Hector", "Helen", "Henry", "Hugo", "Ian", "Ines",
	"Ingrid", "Isabel", "Isabella", "Isla", "Ivan", "Jack", "Jacob", "James", "Jan", "Jane",
	"Javier", "Jennifer", "Jessica", "Joao", "Joel", "John", "Jonas", "Jorge", "Jose", "Joseph",
	"Juan", "Julia", "Julian", "Jules", "Kai", "Karen", "Karim", "Kate", "Katharina", "Kevin",
	"Laura", "Lars", "Lea", "Leah", "Leo", "Leon", "Leonardo", "Liam", "Lily", "Lina", "Linda",
	"Lisa", "Logan", "Lorenzo", "Louis", "Luca", "Lucas", "Lucia", "Luis", "Lukas", "Luke",
	"Madison", "Maja", "Manon", "Marco", "Margaux", "Maria", "Marie", "Mark", "Martin", "Martina",
	"Mary", "Mason", "Mateo", "Matteo", "Matthew", "Max", "Maximilian", "Mehmet", "Mia", "Michael",
	"Michelle", "Milan", "Mila", "Mohammed", "Nadia", "Natalia", "Nathan", "Nico", "Nicolas",
	"Niamh", "Nina", "Noah", "Noelia", "Nora", "Oliver", "Olivia", "Omar", "Oscar", "Pablo",
	"Patricia", "Paul", "Paula", "Pedro", "Peter", "Philip", "Pierre", "Rachel", "Rafael",
	"Raphael", "Rebecca", "Richard", "Robert", "Rosa", "Ryan", "Sam", "Samuel", "Sara", "Sarah",
	"Saga", "Sebastian", "Sem", "Sergio", "Simon", "Sofia", "Sophie", "Stefan", "Stella", "Susan",
	"Theo", "Thomas", "Tim", "Tom", "Tess", "Valentina", "Victor", "Victoria", "Vincent", "Walter",
	"Wilma", "William", "Yara", "Yusuf", "Zara", "Zoe", "Ada", "Agnes", "Aleksander", "Alfie",
	"Ali", "Alma", "Amara", "Amber", "Amelie", "Anders", "Andreas", "Ane", "Angelo", "Anika",
	"Anton", "Antoine", "Archie", "Ariana", "Arjun", "Arne", "Aurelie", "Axel", "Beatriz",
	"Bernard", "Bianca", "Bruno", "Caleb", "Carl", "Carolina", "Cecilia", "Celine", "Chen",
	"Christophe", "Claudia", "Colm", "Cristina", "Dafne", "Dag", "Damian", "Dario", "Dean",
	"Declan", "Delphine", "Denis", "Dennis", "Dimitri", "Dominic", "Dorothy", "Duncan", "Edith",
	"Eduardo", "Edward", "Elif", "Elin", "Eliza", "Elliot", "Emre", "Enzo", "Erin", "Ernesto",
	"Esther", "Eszter", "Ewa", "Fabian", "Fabio", "Federico", "Felipe", "Fernando", "Filip",
	"Florian", "Francis", "Frederik", "Gemma", "Georg", "Gerard", "Gianluca", "Gina", "Greta",
	"Guillaume", "Gustav", "Hamza", "Hanna", "Hans", "Heidi", "Helena", "Henrik", "Hilde", "Holly",
	"Ida", "Ilse", "Irene", "Iris", "Isaac", "Ivana", "Jakob", "Jana", "Jasmine", "Jasper", "Jean",
	"Jens", "Jesper", "Joanna", "Johan", "Johanna", "Jordan", "Josef", "Joshua", "Judith",
	"Julien", "Justin", "Kamil", "Karl", "Karolina", "Katarzyna", "Klaus", "Kristian", "Kristina",
	"Lara", "Laurent", "Leila", "Lena", "Lennart", "Leonie", "Lia", "Linnea", "Lorena", "Lotte",
	"Louise", "Lucy", "Ludwig", "Luka", "Lukasz", "Magnus", "Malik", "Marcel", "Marek", "Margaret",
	"Marina", "Mario", "Marta", "Marten", "Mateusz", "Mathilde", "Matilda", "Mats", "Maya",
	"Mehdi", "Miguel", "Mikael", "Mikkel", "Milo", "Miriam", "Monika", "Nathalie", "Nelson",
	"Nicola", "Niklas", "Nils", "Noemi", "Ole", "Olga", "Oskar", "Owen", "Pascal", "Patrick",
	"Pavel", "Petra", "Pia", "Piotr", "Quentin", "Rania", "Raul", "Renate", "Ricardo", "Rita",
	"Roberto", "Robin", "Roman", "Rosalie", "Ruben", "Ruth", "Sabine", "Salma", "Samira", "Sandra",
	"Sanne", "Sean", "Selin", "Serena", "Silvia", "Sinead", "Siobhan", "Sophia", "Sven", "Tamara",
	"Teresa", "Thea", "Thijs", "Tobias", "Tomas", "Ursula", "Vera", "Viktor", "Violet", "Wang",
	"Wei", "Willem", "Xavier", "Yasmin", "Zofia",
};
const int	ecrm_n_first_names = lengthof(ecrm_first_names);

const char *const ecrm_last_names[] = {
	"Abbott", "Adams", "Ahmed", "Ali", "Allen", "Alvarez", "Andersen", "Anderson", "Andersson",
	"Bailey", "Baker", "Bakker", "Barnes", "Bauer", "Becker", "Bell", "Bennett", "Bernard",
	"Bianchi", "Bos", "Brown", "Bruno", "Bryant", "Butler", "Byrne", "Campbell", "Carter",
	"Castillo", "Chen", "Clark", "Colombo", "Conti", "Cook", "Cooper", "Costa", "Cruz", "Davies",
	"Davis", "Diaz", "Doyle", "Dubois", "Durand", "Edwards", "Eriksson", "Esposito", "Evans",
	"Faure", "Fernandez", "Ferrari", "Fischer", "Fisher", "Flores", "Foster", "Garcia", "Garnier",
	"Gallo", "Gomez", "Gonzalez", "Graham", "Gray", "Greco", "Green", "Griffin", "Gustafsson",
	"Hall", "Hamilton", "Hansen", "Hansson", "Harris", "Hayes", "Hernandez", "Hill", "Hoffmann",
	"Howard", "Huber", "Hughes", "Jackson", "Jansen", "Janssen", "Jensen", "Jimenez", "Johansson",
	"Johnson", "Jones", "Jonsson", "Karlsson", "Kelly", "Kennedy", "Keller", "King", "Klein",
	"Koch", "Kowalski", "Kumar", "Lambert", "Larsen", "Larsson", "Laurent", "Lee", "Lefevre",
	"Lehmann", "Leroy", "Lewis", "Lindberg", "Lopez", "Marino", "Martinez", "Meier", "Meijer",
	"Meyer", "Michel", "Miller", "Mitchell", "Moore", "Moreau", "Moreno", "Morgan", "Morris",
	"Moser", "Muller", "Murphy", "Murray", "Nguyen", "Nielsen", "Nilsson", "Novak", "Olsen",
	"Olsson", "Ortiz", "Owen", "Parker", "Patel", "Perez", "Persson", "Peters", "Petit",
	"Phillips", "Price", "Ramirez", "Reed", "Reyes", "Ricci", "Richter", "Rivera", "Roberts",
	"Robinson", "Rodriguez", "Romano", "Rossi", "Ruiz", "Russo", "Sanchez", "Santos", "Schafer",
	"Schmid", "Schmidt", "Schneider", "Schulz", "Scott", "Silva", "Smit", "Smith", "Steiner",
	"Stewart", "Sullivan", "Svensson", "Taylor", "Thompson", "Torres", "Turner", "Visser", "Vos",
	"Wagner", "Walker", "Walsh", "Wang", "Ward", "Watson", "Weber", "White", "Williams", "Wilson",
	"Wolf", "Wood", "Wright", "Young", "Zhang", "Zimmermann", "Tanaka", "Suzuki", "Sato", "Kim",
	"Park", "Singh", "Sharma", "Khan", "Yilmaz", "Kaya", "Popescu", "Horvat", "Nowak", "Dvorak",
	"Virtanen", "Korhonen", "Haugen", "Berg", "Dahl", "Lund", "Aguilar", "Andrade", "Antonelli",
	"Arnold", "Bailly", "Banks", "Barbieri", "Bauman", "Benitez", "Blanc", "Bonnet", "Bouvier",
	"Boyle", "Brennan", "Brooks", "Caruso", "Castro", "Chevalier", "Christensen", "Coleman",
	"Collins", "Conte", "Cortes", "Cunningham", "Dalton", "Dekker", "Delgado", "Devlin",
	"Dietrich", "Dijkstra", "Dumont", "Dunne", "Ellis", "Engel", "Erikson", "Farrell", "Ferguson",
	"Fitzgerald", "Fontaine", "Fournier", "Fox", "Frank", "Fuchs", "Gallagher", "Gauthier",
	"Gibson", "Gilbert", "Girard", "Gordon", "Grant", "Gruber", "Guerin", "Gunnarsson", "Haas",
	"Hahn", "Hartmann", "Heinrich", "Hendriks", "Herrera", "Hofer", "Holm", "Horvath", "Hunt",
	"Iglesias", "Ivanov", "Jacobs", "Jakobsen", "Jaworski", "Jordan", "Kaiser", "Kavanagh", "Kerr",
	"Kovacs", "Kozlov", "Kraus", "Kruger", "Lambrecht", "Lange", "Lindqvist", "Lombardi",
	"Lovelace", "Lowe", "Maas", "Mancini", "Marshall", "Mason", "Mayer", "Medina", "Mendes",
	"Mendoza", "Mercier", "Molina", "Morales", "Moretti", "Mulder", "Navarro", "Neumann",
	"Nicolas", "Nolan", "Oliveira", "Ortega", "Pereira", "Peeters", "Pohl",
	"Quinn", "Ramos", "Reid", "Renard", "Rojas", "Roussel", "Romero", "Rousseau", "Russell",
	"Sandberg", "Santoro", "Sauer", "Schmitt", "Schubert", "Shaw", "Simon", "Sorensen", "Stein",
	"Suarez", "Thomas", "Timmermans", "Vargas", "Vasquez", "Vogel", "Wallace", "Webb", "Werner",
	"Wiese", "Winter", "Wouters", "Yildiz", "Zeller", "Ziegler",
};
const int	ecrm_n_last_names = lengthof(ecrm_last_names);

/* Sorted lower-case copy of both lists, built on first use. */
static char **known_names = NULL;
static int	n_known_names = 0;

static int
CompareNames(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
BuildKnownNames(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	int			n = 0;
	char	  **names = palloc((ecrm_n_first_names + ecrm_n_last_names) * sizeof(char *));

	for (int i = 0; i < ecrm_n_first_names; i++)
		names[n++] = pstrdup(ecrm_first_names[i]);
	for (int i = 0; i < ecrm_n_last_names; i++)
		names[n++] = pstrdup(ecrm_last_names[i]);
	for (int i = 0; i < n; i++)
		for (char *p = names[i]; *p; p++)
			*p = pg_ascii_tolower((unsigned char) *p);
	qsort(names, n, sizeof(char *), CompareNames);
	MemoryContextSwitchTo(old);
	n_known_names = n;
	known_names = names;
}

/* Base letters of U+00C0..U+00FF (Latin-1 letters with accents), lower case. */
static const char latin1_fold[65] =
	"aaaaaaaceeeeiiiidnooooo_ouuuuyts"
	"aaaaaaaceeeeiiiidnooooo_ouuuuyty";

/*
 * Whether a word (in the database encoding) is one of the common given names
 * or surnames, ignoring case and, in UTF-8 databases, Latin accents
 * ("Müller" and "MULLER" both match "muller").
 */
bool
EcrmIsCommonName(const char *word, int len)
{
	char		buf[32];
	int			n = 0;
	char	   *key = buf;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;

	if (known_names == NULL)
		BuildKnownNames();
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) word[i];

		if (n >= (int) sizeof(buf) - 1)
			return false;
		if (c < 0x80)
			buf[n++] = pg_ascii_tolower(c);
		else if (utf8 && c == 0xC3 && i + 1 < len &&
				 (unsigned char) word[i + 1] >= 0x80 && (unsigned char) word[i + 1] <= 0xBF)
		{
			buf[n++] = latin1_fold[(unsigned char) word[i + 1] - 0x80];
			i++;
		}
		else
			return false;
	}
	buf[n] = '\0';
	return bsearch(&key, known_names, n_known_names, sizeof(char *), CompareNames) != NULL;
}
