"""The hand-curated part of the label vocabulary: which WordNet nodes become labels.

ImageNet's 1,000 classes are WordNet leaves; their hypernym chains run through nodes a
person would never search for ("placental", "chordate", "instrumentality"). Only the
nodes listed in ``NODES`` become parent labels, under the names Amazon Rekognition uses
where its label list is known. ``build.vocabulary`` reads these tables with WordNet and
writes ``photos/analysis/data/labels.json``; edit here, then run
``make vocabulary``.
"""

from __future__ import annotations

ANIMALS = "Animals and Pets"
FOOD = "Food and Beverage"
VEHICLES = "Vehicles and Automotive"
TECH = "Technology and Computing"
HOME = "Home and Indoors"
FURNITURE = "Furniture and Furnishings"
KITCHEN = "Kitchen and Dining"
APPAREL = "Apparel and Accessories"
NATURE = "Nature and Outdoors"
PLANTS = "Plants and Flowers"
BUILDINGS = "Buildings and Architecture"
TOOLS = "Tools and Machinery"
WEAPONS = "Weapons and Military"
HOBBIES = "Hobbies and Interests"
SPORTS = "Sports"
PERSON = "Person Description"
OBJECTS = "Everyday Objects"

# WordNet node -> (label name, categories, aliases). A class's parents are the listed
# nodes among its hypernyms, nearest first; its categories are those of its parents.
NODES: dict[str, tuple[str, list[str], list[str]]] = {
    # animals
    "n00015388": ("Animal", [ANIMALS], []),
    "n01861778": ("Mammal", [ANIMALS], []),
    "n01503061": ("Bird", [ANIMALS], []),
    "n01661091": ("Reptile", [ANIMALS], []),
    "n01627424": ("Amphibian", [ANIMALS], []),
    "n02512053": ("Fish", [ANIMALS], []),
    "n01905661": ("Invertebrate", [ANIMALS], []),
    "n02159955": ("Insect", [ANIMALS], ["Bug"]),
    "n01772222": ("Spider", [ANIMALS], []),
    "n01976957": ("Crab", [ANIMALS], []),
    "n01982650": ("Lobster", [ANIMALS], []),
    "n01317541": ("Pet", [ANIMALS], []),
    "n02083346": ("Canine", [ANIMALS], []),
    "n02084071": ("Dog", [ANIMALS], ["Puppy"]),
    "n02121808": ("Cat", [ANIMALS], ["Kitty"]),
    "n02127808": ("Big Cat", [ANIMALS], []),
    "n02469914": ("Primate", [ANIMALS], []),
    "n02484322": ("Monkey", [ANIMALS], []),
    "n02470325": ("Ape", [ANIMALS], []),
    "n01726692": ("Snake", [ANIMALS], ["Serpent"]),
    "n01674464": ("Lizard", [ANIMALS], []),
    "n01662784": ("Turtle", [ANIMALS], ["Tortoise"]),
    "n01696633": ("Crocodile", [ANIMALS], ["Alligator"]),
    "n01639765": ("Frog", [ANIMALS], ["Toad"]),
    "n02274259": ("Butterfly", [ANIMALS], []),
    "n02164464": ("Beetle", [ANIMALS], []),
    "n02374451": ("Horse", [ANIMALS], []),
    "n02419796": ("Antelope", [ANIMALS], []),
    "n02131653": ("Bear", [ANIMALS], []),
    "n02114100": ("Wolf", [ANIMALS], []),
    "n02118333": ("Fox", [ANIMALS], []),
    "n02329401": ("Rodent", [ANIMALS], []),
    "n02324045": ("Rabbit", [ANIMALS], ["Bunny"]),
    "n02503517": ("Elephant", [ANIMALS], []),
    "n02062744": ("Whale", [ANIMALS], []),
    "n01482330": ("Shark", [ANIMALS], []),
    "n01816887": ("Parrot", [ANIMALS], []),
    "n01846331": ("Duck", [ANIMALS], []),
    # food and drink
    "n07555863": ("Food", [FOOD], []),
    "n07557434": ("Dish", [FOOD], ["Meal"]),
    "n07881800": ("Beverage", [FOOD], ["Drink"]),
    "n07929519": ("Coffee", [FOOD], []),
    "n07884567": ("Alcohol", [FOOD], []),
    "n07705711": ("Produce", [FOOD], []),
    "n07705931": ("Fruit", [FOOD], []),
    "n07707451": ("Vegetable", [FOOD], []),
    "n07609840": ("Dessert", [FOOD], ["Sweets"]),
    "n07679356": ("Bread", [FOOD], []),
    # vehicles
    "n04524313": ("Vehicle", [VEHICLES], ["Transportation"]),
    "n02958343": ("Car", [VEHICLES], ["Automobile"]),
    "n03790512": ("Motorcycle", [VEHICLES], ["Motorbike"]),
    "n02834778": ("Bicycle", [VEHICLES], ["Bike"]),
    "n04490091": ("Truck", [VEHICLES], ["Lorry"]),
    "n02924116": ("Bus", [VEHICLES], []),
    "n04520170": ("Van", [VEHICLES], []),
    "n02686568": ("Aircraft", [VEHICLES], []),
    "n04530566": ("Watercraft", [VEHICLES], []),
    "n02858304": ("Boat", [VEHICLES], []),
    "n04194289": ("Ship", [VEHICLES], []),
    "n04128499": ("Sailboat", [VEHICLES], []),
    "n03684823": ("Locomotive", [VEHICLES], ["Train"]),
    "n04264914": ("Spacecraft", [VEHICLES], ["Spaceship"]),
    "n04099429": ("Rocket", [VEHICLES], []),
    # technology
    "n03278248": ("Electronics", [TECH], []),
    "n03082979": ("Computer", [TECH], []),
    "n03916720": ("Computer Hardware", [TECH], []),
    "n04401088": ("Phone", [TECH], ["Telephone"]),
    "n02942699": ("Camera", [TECH], []),
    "n04151581": ("Screen", [TECH], []),
    "n03046257": ("Clock", [HOME], []),
    # home, furniture, kitchen
    "n03405725": ("Furniture", [FURNITURE], []),
    "n03001627": ("Chair", [FURNITURE], []),
    "n04379243": ("Table", [FURNITURE], []),
    "n02933112": ("Cabinet", [FURNITURE], ["Cupboard"]),
    "n03636248": ("Lamp", [HOME], []),
    "n02729837": ("Appliance", [HOME], []),
    "n03620052": ("Kitchen Appliance", [KITCHEN], []),
    "n03621049": ("Kitchen Utensil", [KITCHEN], []),
    "n04381994": ("Tableware", [KITCHEN], []),
    "n02880940": ("Bowl", [KITCHEN], []),
    "n03990474": ("Pot", [KITCHEN], []),
    "n02876657": ("Bottle", [OBJECTS], []),
    "n03438257": ("Glass", [KITCHEN], []),
    "n03603722": ("Jug", [KITCHEN], []),
    "n03593526": ("Jar", [KITCHEN], []),
    "n02883344": ("Box", [OBJECTS], []),
    "n02773037": ("Bag", [APPAREL], []),
    "n02801938": ("Basket", [OBJECTS], []),
    "n03151077": ("Curtain", [HOME], []),
    "n04459362": ("Towel", [HOME], []),
    # apparel
    "n03051540": ("Clothing", [APPAREL], ["Apparel"]),
    "n03380867": ("Footwear", [APPAREL], []),
    "n04199027": ("Shoe", [APPAREL], []),
    "n03502509": ("Headwear", [APPAREL], []),
    "n03497657": ("Hat", [APPAREL], []),
    "n02954340": ("Cap", [APPAREL], []),
    "n04370048": ("Sweater", [APPAREL], []),
    "n03057021": ("Coat", [APPAREL], []),
    "n04230808": ("Skirt", [APPAREL], []),
    "n04371563": ("Swimwear", [APPAREL], []),
    "n03815615": ("Tie", [APPAREL], ["Necktie"]),
    "n04143897": ("Scarf", [APPAREL], []),
    "n03513137": ("Helmet", [APPAREL], []),
    "n03725035": ("Mask", [APPAREL], []),
    "n02739668": ("Armor", [APPAREL], []),
    # nature
    "n09287968": ("Nature", [NATURE], ["Outdoors"]),
    "n09359803": ("Mountain", [NATURE], []),
    "n09433442": ("Shoreline", [NATURE], ["Coast"]),
    "n00017222": ("Plant", [PLANTS], []),
    "n11669921": ("Flower", [PLANTS], []),
    "n12992868": ("Fungus", [PLANTS], ["Mushroom"]),
    # buildings
    "n02913152": ("Building", [BUILDINGS], []),
    "n03544360": ("House", [BUILDINGS], []),
    "n04202417": ("Shop", [BUILDINGS], ["Store"]),
    "n04417809": ("Theater", [BUILDINGS], []),
    "n02898711": ("Bridge", [BUILDINGS], []),
    "n03327234": ("Fence", [BUILDINGS], []),
    "n03743902": ("Monument", [BUILDINGS], []),
    "n04105068": ("Roof", [BUILDINGS], []),
    # tools, weapons
    "n04451818": ("Tool", [TOOLS], []),
    "n03489162": ("Hand Tool", [TOOLS], []),
    "n03699975": ("Machine", [TOOLS], []),
    "n03623556": ("Knife", [TOOLS], []),
    "n04565375": ("Weapon", [WEAPONS], []),
    "n03467984": ("Gun", [WEAPONS], []),
    "n04192858": ("Shield", [WEAPONS], []),
    "n03764276": ("Military Vehicle", [WEAPONS], []),
    # hobbies, sports
    "n03800933": ("Musical Instrument", [HOBBIES], []),
    "n04338517": ("String Instrument", [HOBBIES], []),
    "n03467517": ("Guitar", [HOBBIES], []),
    "n03928116": ("Piano", [HOBBIES], []),
    "n03915437": ("Percussion Instrument", [HOBBIES], []),
    "n04586932": ("Wind Instrument", [HOBBIES], []),
    "n03964744": ("Toy", [HOBBIES], []),
    "n02778669": ("Ball", [SPORTS], []),
    "n04285146": ("Sports Equipment", [SPORTS], []),
    # people
    "n00007846": ("Person", [PERSON], ["Human"]),
}

# Parents WordNet does not give, by label name.
EXTRA_PARENTS: dict[str, list[str]] = {
    "Cat": ["Pet"],
    "Dish": ["Food"],
    "Camera": ["Electronics"],
    "Rocket": ["Vehicle"],
    "Missile": ["Rocket"],  # WordNet: a missile is a rocket (n03773504 -> n04099429)
    "Coffee Cup": ["Cup"],
    "Moped": ["Motorcycle"],
    "Motor Scooter": ["Motorcycle", "Vehicle"],
    "Space Shuttle": ["Rocket"],
    "Sunglasses": ["Accessories"],
    # WordNet files a bus under "public transport" and an ox under "bovine", not under the
    # nodes a person searches by (and the detector's COCO classes use).
    "Bus": ["Vehicle"],
    "Ox": ["Cow"],
    "Ram": ["Sheep"],
    "Granny Smith Apple": ["Apple"],
    "Television": ["Electronics"],
}

# Classes whose WordNet ancestry misleads (ImageNet's "cup" is a quantity of punch,
# its "missile" images are mostly space rockets): only EXTRA_PARENTS apply to them.
IGNORE_WORDNET = {"n07930864", "n03773504"}

# Categories for labels that no listed node gives one, from the nearest of these
# WordNet nodes among the hypernyms. These nodes are not labels.
CATEGORY_FALLBACKS: dict[str, str] = {
    "n03082979": TECH,  # computer
    "n03278248": TECH,  # electronic equipment
    "n04341686": BUILDINGS,  # structure
    "n03122748": HOME,  # covering
    "n03094503": OBJECTS,  # container
    "n03183080": TOOLS,  # device
    "n03294048": TOOLS,  # equipment
    "n03563967": TOOLS,  # implement
    "n00019128": NATURE,  # natural object
    "n00004475": NATURE,  # organism
    "n00021939": OBJECTS,  # artifact
    "n00020827": OBJECTS,  # matter
}

# Labels that are not WordNet nodes of ImageNet's hierarchy, with their categories.
EXTRA_LABELS: dict[str, tuple[list[str], list[str]]] = {
    "Cup": ([KITCHEN], []),
    "Accessories": ([APPAREL], []),
}

# ImageNet class id (WordNet node) -> label name, where the readable name the class list
# gives is not the one a person would search for, or two classes would share a name.
CLASS_NAMES: dict[str, str] = {
    "n02123045": "Tabby Cat",
    "n02123159": "Tiger Cat",
    "n01608432": "Bird of Prey",  # WordNet's kite, a hawk; COCO's Kite is the toy
    "n01685808": "Whiptail Lizard",
    "n01847000": "Drake",
    "n02089078": "Coonhound",
    "n02098286": "West Highland White Terrier",
    "n02106382": "Bouvier des Flandres",
    "n02107574": "Greater Swiss Mountain Dog",
    "n02113978": "Mexican Hairless Dog",
    "n02114712": "Red Wolf",
    "n02412080": "Ram",
    "n02422699": "Impala",
    "n02817516": "Bearskin Hat",
    "n02971356": "Cardboard Box",
    "n03017168": "Wind Chime",
    "n03290653": "Entertainment Center",
    "n03424325": "Gas Mask",
    "n03710637": "Leotard",
    "n03710721": "Swimsuit",
    "n03871628": "Packaging",
    "n04201297": "Room Divider",
    "n04371430": "Swim Trunks",
    "n04523525": "Vaulted Ceiling",
    "n04612504": "Yawl",
    "n06794110": "Street Sign",
    "n07760859": "Custard Apple",
    "n13052670": "Hen of the Woods",
    "n13133613": "Ear of Corn",
    "n03063599": "Coffee Cup",
    "n07930864": "Cup",
    "n03773504": "Rocket",
    "n04008634": "Missile",
    "n02012849": "Crane",
    "n03126707": "Construction Crane",
    "n04355933": "Sunglasses",
    "n04356056": "Sunglasses",
    "n02963159": "Cardigan",
    "n02113186": "Cardigan Welsh Corgi",
    "n03888605": "Parallel Bars",
    "n02788148": "Handrail",
}

# Classes that share a name on purpose (the class list has two synsets for one thing).
SHARED_NAMES = {"Sunglasses"}

# Names that both a COCO class and an ImageNet class carry, each checked to be the same
# thing in both (a fruit and a fruit, a phone and a phone). Any other shared name stops the
# generator: one name serving two senses files a toy kite under Bird (ImageNet's kite is a
# hawk) and makes "Bird" find a beach. Name one of the two in CLASS_NAMES instead.
SAME_SENSE = {
    "Backpack", "Banana", "Broccoli", "Computer Keyboard", "Computer Mouse", "Couch", "Cup", "Dining Table",
    "Hair Dryer", "Hot Dog", "Microwave Oven", "Mobile Phone", "Orange", "Parking Meter", "Pizza", "Refrigerator",
    "Remote Control", "Sink", "Teddy Bear", "Television", "Toaster", "Traffic Light", "Umbrella", "Vase", "Zebra",
}

# COCO's 80 classes (the object detector's output order) as label names. Names that
# are ImageNet labels or nodes above share their parents; the rest are described here.
COCO_CLASSES = [
    "Person", "Bicycle", "Car", "Motorcycle", "Airplane", "Bus", "Train", "Truck", "Boat", "Traffic Light",
    "Fire Hydrant", "Stop Sign", "Parking Meter", "Bench", "Bird", "Cat", "Dog", "Horse", "Sheep", "Cow",
    "Elephant", "Bear", "Zebra", "Giraffe", "Backpack", "Umbrella", "Handbag", "Tie", "Suitcase", "Frisbee",
    "Skis", "Snowboard", "Ball", "Kite", "Baseball Bat", "Baseball Glove", "Skateboard", "Surfboard",
    "Tennis Racket", "Bottle", "Wine Glass", "Cup", "Fork", "Knife", "Spoon", "Bowl", "Banana", "Apple",
    "Sandwich", "Orange", "Broccoli", "Carrot", "Hot Dog", "Pizza", "Donut", "Cake", "Chair", "Couch",
    "Potted Plant", "Bed", "Dining Table", "Toilet", "Television", "Laptop", "Computer Mouse", "Remote Control",
    "Computer Keyboard", "Mobile Phone", "Microwave Oven", "Oven", "Toaster", "Sink", "Refrigerator", "Book",
    "Clock", "Vase", "Scissors", "Teddy Bear", "Hair Dryer", "Toothbrush",
]
COCO_LABELS: dict[str, tuple[list[str], list[str]]] = {
    "Airplane": (["Aircraft", "Vehicle"], ["Aeroplane", "Plane"]),
    "Train": (["Vehicle"], ["Railway"]),
    "Fire Hydrant": ([], ["Hydrant"]),
    "Stop Sign": (["Street Sign"], []),
    "Bench": (["Furniture"], []),
    "Sheep": (["Mammal", "Animal"], ["Lamb"]),
    "Cow": (["Mammal", "Animal"], ["Cattle"]),
    "Giraffe": (["Mammal", "Animal"], []),
    "Handbag": (["Bag", "Accessories"], ["Purse"]),
    "Suitcase": (["Bag", "Luggage"], []),
    "Luggage": ([], ["Baggage"]),
    "Frisbee": (["Toy"], ["Flying Disc"]),
    "Kite": (["Toy"], []),
    "Skis": (["Sports Equipment"], ["Ski"]),
    "Snowboard": (["Sports Equipment"], []),
    "Baseball Bat": (["Sports Equipment"], []),
    "Baseball Glove": (["Sports Equipment"], []),
    "Skateboard": (["Sports Equipment"], []),
    "Surfboard": (["Sports Equipment"], []),
    "Tennis Racket": (["Sports Equipment"], []),
    "Wine Glass": (["Glass"], []),
    "Fork": (["Cutlery", "Tableware"], []),
    "Spoon": (["Cutlery", "Tableware"], []),
    "Cutlery": (["Tableware"], ["Silverware"]),
    "Apple": (["Fruit", "Produce", "Food"], []),
    "Sandwich": (["Food"], []),
    "Carrot": (["Vegetable", "Produce", "Food"], []),
    "Donut": (["Dessert", "Food"], ["Doughnut"]),
    "Cake": (["Dessert", "Food"], []),
    "Potted Plant": (["Plant"], ["Houseplant"]),
    "Bed": (["Furniture"], []),
    "Toilet": ([], []),
    "Laptop": (["Computer", "Electronics"], ["Notebook Computer"]),
    "Oven": (["Kitchen Appliance", "Appliance"], []),
    "Book": ([], []),
    "Scissors": (["Tool"], []),
    "Toothbrush": ([], []),
}
COCO_CATEGORIES: dict[str, list[str]] = {
    "Train": [VEHICLES], "Fire Hydrant": [BUILDINGS], "Stop Sign": [BUILDINGS], "Luggage": [APPAREL],
    "Toilet": [HOME], "Book": ["Text and Documents"], "Toothbrush": [HOME], "Cutlery": [KITCHEN],
}
