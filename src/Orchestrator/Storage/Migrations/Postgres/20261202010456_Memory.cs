using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Orchestrator.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Memory : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "MemoryItems",
                columns: table => new
                {
                    Seq = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Principal = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Session = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Kind = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    Role = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    Text = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    JobId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    NodeId = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Ordinal = table.Column<int>(type: "integer", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    ExpiresAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Bytes = table.Column<int>(type: "integer", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_MemoryItems", x => x.Seq);
                });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_ExpiresAt",
                table: "MemoryItems",
                column: "ExpiresAt");

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_JobId_NodeId_Ordinal",
                table: "MemoryItems",
                columns: new[] { "JobId", "NodeId", "Ordinal" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Kind_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Kind", "Seq" });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Seq" });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Session_Kind_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Session", "Kind", "Seq" });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Session_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Session", "Seq" });

            // Text search: a generated tsvector of the text split on everything but letters and digits (as SQLite's
            // unicode61 tokenizer splits it, so both stores find the same items), with a GIN index. Part of the row, so a
            // forgotten item is gone from the index at once. Not in the EF model: only the search statement reads it.
            migrationBuilder.Sql("""
                ALTER TABLE "MemoryItems" ADD COLUMN "Search" tsvector
                    GENERATED ALWAYS AS (to_tsvector('simple', regexp_replace("Text", '[[:space:][:punct:]]+', ' ', 'g'))) STORED;
                """);
            migrationBuilder.Sql("""CREATE INDEX "IX_MemoryItems_Search" ON "MemoryItems" USING GIN ("Search");""");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "MemoryItems");
        }
    }
}
